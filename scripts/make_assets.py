"""Generate the small datasets under assets/data/ (deterministic; pure Python, no heavy imports).

Usage: python scripts/make_assets.py [OUT_DIR]      (default: assets/data next to this script's repo)

Files (each a JSONL the built-in recipes use):
  arith-prompts.jsonl   {"prompt": "What is 3 + 4?", "answer": "7"}           GRPO / RLOO / best-of-K / distill
  arith-heldout.jsonl   same form, disjoint questions                          evaluation
  format-sft.jsonl      {"messages": [system, user, assistant]}                SFT on the reasoning format
  instruct-sft.jsonl    {"instruction", "input", "output"}                     SFT, Alpaca form
  prefs.jsonl           {"prompt": [...], "chosen": [...], "rejected": [...]}  reward model / DPO
  kto.jsonl             {"prompt": [...], "completion": [...], "label": bool}  KTO
  text.jsonl            {"text": "..."}                                        pretraining
"""
import json
import random
import sys
from pathlib import Path

SYSTEM_PROMPT = "Respond in the format <reasoning>...</reasoning><answer>...</answer>"
ROOT = Path(__file__).resolve().parent.parent


def good(a: int, b: int) -> str:
    return f"<reasoning>{a} plus {b} is {a + b}</reasoning><answer>{a + b}</answer>"


def bad(rng: random.Random, a: int, b: int) -> str:
    wrong = a + b + rng.randint(1, 5)
    return rng.choice([f"I think it is {wrong}", f"<answer>{wrong}</answer>", f"{a} plus {b} is {wrong}"])


def write(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {len(rows)} rows")


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    # Single-digit addition: small enough that a 100k-parameter model can learn it on a CPU in minutes.
    pairs = [(a, b) for a in range(10) for b in range(10)]
    rng.shuffle(pairs)
    train, heldout = pairs[:80], pairs[80:]
    q = lambda a, b: f"What is {a} + {b}?"  # noqa: E731
    system = {"role": "system", "content": SYSTEM_PROMPT}

    write(out / "arith-prompts.jsonl", [{"prompt": q(a, b), "answer": str(a + b)} for a, b in train * 2])
    write(out / "arith-heldout.jsonl", [{"prompt": q(a, b), "answer": str(a + b)} for a, b in heldout])
    write(out / "format-sft.jsonl", [
        {"messages": [system, {"role": "user", "content": q(a, b)}, {"role": "assistant", "content": good(a, b)}]}
        for a, b in train * 2
    ])
    write(out / "instruct-sft.jsonl", [
        {"instruction": "Add the two numbers.", "input": f"{a} and {b}", "output": good(a, b)} for a, b in train
    ])
    prefs, kto = [], []
    for i, (a, b) in enumerate(train):
        prompt = [system, {"role": "user", "content": q(a, b)}]
        chosen = [{"role": "assistant", "content": good(a, b)}]
        rejected = [{"role": "assistant", "content": bad(rng, a, b)}]
        prefs.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
        label = i % 2 == 0
        kto.append({"prompt": prompt, "completion": chosen if label else rejected, "label": label})
    write(out / "prefs.jsonl", prefs)
    write(out / "kto.jsonl", kto)
    words = ("the model learns to add small numbers one step at a time first it reads the question "
             "then it thinks and finally it writes the answer").split()
    text = []
    for a, b in train * 2:
        filler = " ".join(rng.choices(words, k=8))
        text.append({"text": f"{q(a, b)} {a} plus {b} is {a + b}. The answer is {a + b}. {filler}."})
    write(out / "text.jsonl", text)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "assets" / "data")
