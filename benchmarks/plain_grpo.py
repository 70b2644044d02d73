"""GRPO with plain trl, the way a user writes it without workbench: the baseline of bench_training.

    python benchmarks/plain_grpo.py --model MODEL_DIR --data arith-prompts.jsonl --out OUT_DIR --max-steps 80

Same model, data, system prompt, reward functions and hyperparameters as recipes/grpo-tiny.toml (and the same
TrainingArguments workbench adds on a CPU: report_to none, no tqdm, save_total_limit 3, fp32). Imports nothing
from workbench. Prints trl's log dicts ({'loss': ...}) to stdout. --gpu (bf16 on the GPU, the model in its saved
dtype), the size flags and --use-vllm (colocate) are for benchmarks/gpu_check.py.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import torch
from datasets import load_dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import GRPOConfig, GRPOTrainer

SYSTEM_PROMPT = "Respond in the format <reasoning>...</reasoning><answer>...</answer>"
FORMAT_RE = re.compile(r"^\s*<reasoning>.*?</reasoning>\s*<answer>.*?</answer>\s*$", re.DOTALL)
ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def text_of(completion) -> str:
    # chat prompts give chat completions: [{"role": "assistant", "content": ...}]
    if isinstance(completion, list):
        return completion[-1]["content"] if completion else ""
    return str(completion)


# trl names the metrics after the function (rewards/format/mean), as for workbench's built-in "format"
def format(completions, **kwargs):
    return [1.0 if FORMAT_RE.match(text_of(c)) else 0.0 for c in completions]


def _same(given: str, expected: str) -> bool:
    # The checker open-r1 uses: plain numbers compared as numbers, anything else through math-verify ("2+2" = 4).
    given, expected = given.strip(), expected.strip()
    if given == expected:
        return True
    try:
        return abs(float(given.replace(",", "")) - float(expected.replace(",", ""))) < 1e-6
    except ValueError:
        pass
    try:
        import math_verify

        gold = math_verify.parse(expected, parsing_timeout=5)
        return bool(gold) and bool(math_verify.verify(gold, math_verify.parse(given, parsing_timeout=5),
                                                      timeout_seconds=5))
    except Exception:  # noqa: BLE001 - a checker failure is a wrong answer
        return False


def correctness(completions, answer, **kwargs):
    out = []
    for c, a in zip(completions, answer):
        m = ANSWER_RE.search(text_of(c))
        out.append(2.0 if m and _same(m.group(1), str(a)) else 0.0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-steps", type=int, default=30)
    ap.add_argument("--gpu", action="store_true", help="train on the GPU in bf16 (default: the CPU in fp32)")
    ap.add_argument("--batch-size", type=int, default=16, help="completions per step")
    ap.add_argument("--num-generations", type=int, default=4)
    ap.add_argument("--max-completion-length", type=int, default=32)
    ap.add_argument("--save-steps", type=int, default=100)
    ap.add_argument("--learning-rate", type=float, default=1e-3)
    ap.add_argument("--use-vllm", action="store_true", help="generate with vLLM, colocated (needs --gpu)")
    args = ap.parse_args()
    out = Path(args.out)

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    dataset = load_dataset("json", data_files=args.data, split="train")
    dataset = dataset.map(lambda row: {"prompt": [{"role": "system", "content": SYSTEM_PROMPT},
                                                  {"role": "user", "content": row["prompt"]}]})
    config = GRPOConfig(
        output_dir=str(out / "checkpoints"),
        seed=0,
        num_generations=args.num_generations,
        per_device_train_batch_size=args.batch_size,
        temperature=0.9,
        beta=0.04,
        max_completion_length=args.max_completion_length,
        learning_rate=args.learning_rate,
        max_steps=args.max_steps,
        logging_steps=1,
        save_steps=args.save_steps,
        save_total_limit=3,
        reward_weights=[1.0, 1.0],
        report_to="none",
        disable_tqdm=True,
        use_cpu=not args.gpu,
        bf16=args.gpu,
        fp16=False,
        **({"use_vllm": True, "vllm_mode": "colocate"} if args.use_vllm else {}),
    )
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype="auto" if args.gpu else torch.float32)
    trainer = GRPOTrainer(model=model, reward_funcs=[format, correctness], args=config, train_dataset=dataset,
                          processing_class=tokenizer)
    trainer.train()
    trainer.model.save_pretrained(out / "final")
    tokenizer.save_pretrained(out / "final")


if __name__ == "__main__":
    main()
