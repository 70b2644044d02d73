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
  count-text.jsonl      {"text": "..."}: the counting procedure in plain text  pretraining (recipes/demo)
  count-sft.jsonl       {"messages": [...]}: short answers and counted ones    SFT (recipes/demo)
  count-prompts.jsonl   {"prompt": "...", "answer": "..."}                     GRPO (recipes/demo)

The demo's two files (count-*) teach a way to add that carries over to unseen pairs: count a up while counting b
down to 0 ("3+4: 3,4 4,3 5,2 6,1 7,0"). Every step is a local rule (the successor of one number, the predecessor of
the other; stop at 0), so it works for the held-out pairs too, which appear in no file but arith-heldout.jsonl;
the short "3 plus 4 is 7" answer is a lookup that a 100k-parameter model half memorises.
"""
import json
import random
import sys
from pathlib import Path

SYSTEM_PROMPT = "Respond in the format <reasoning>...</reasoning><answer>...</answer>"
ROOT = Path(__file__).resolve().parent.parent


def good(a: int, b: int) -> str:
    return f"<reasoning>{a} plus {b} is {a + b}</reasoning><answer>{a + b}</answer>"


def count(a: int, b: int) -> str:
    """Count up from a while counting b down to 0, one 'value,left' pair per step: 3+4: 3,4 4,3 5,2 6,1 7,0."""
    return f"{a}+{b}: " + " ".join(f"{a + i},{b - i}" for i in range(b + 1))


def counted(a: int, b: int) -> str:
    return f"<reasoning>{count(a, b)}</reasoning><answer>{a + b}</answer>"


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

    # The demo pipeline (recipes/demo). Its own generator, so the files above stay as they were.
    drng = random.Random(1)

    def shuffled(rows: list) -> list:
        rows = list(rows)
        drng.shuffle(rows)
        return rows

    # Counting for the training pairs, and for a two-digit first number (10..19 + 0..9: no single-digit pair, so
    # none of the held-out ones): a model that has to copy numbers it cannot have memorised learns to copy, which is
    # what counting needs on an unseen pair.
    wide = [(a, b) for a in range(10, 20) for b in range(10)]
    write(out / "count-text.jsonl", shuffled(
        [{"text": f"{q(a, b)} {count(a, b)}. The answer is {a + b}."} for _ in range(4) for a, b in train]
        + [{"text": f"{q(a, b)} {count(a, b)}. The answer is {a + b}."} for _ in range(2) for a, b in wide]))
    # Two correct styles, the short one twice as often: SFT imitates the majority, GRPO finds the one that pays.
    chat = lambda a, b, content: {"messages": [  # noqa: E731
        system, {"role": "user", "content": q(a, b)}, {"role": "assistant", "content": content}]}
    write(out / "count-sft.jsonl", shuffled([chat(a, b, good(a, b)) for a, b in train * 2]
                                            + [chat(a, b, counted(a, b)) for a, b in train]))
    # GRPO's prompts (answers only, no worked solution): the training pairs and the two-digit ones, where an answer
    # cannot be looked up and only counting and copying the count's last value pays.
    write(out / "count-prompts.jsonl", shuffled(
        [{"prompt": q(a, b), "answer": str(a + b)} for a, b in train * 2 + wide]))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "assets" / "data")
