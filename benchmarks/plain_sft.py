"""SFT with plain trl, the way a user writes it without workbench: the baseline of bench_training.

    python benchmarks/plain_sft.py --model MODEL_DIR --data format-sft.jsonl --out OUT_DIR --max-steps 200

Same model, data and hyperparameters as recipes/sft-tiny.toml (and the same TrainingArguments workbench adds on
a CPU: seed 0, report_to none, no tqdm, save_total_limit 3, fp32). Imports nothing from workbench. Prints trl's
log dicts ({'loss': ...}) to stdout.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from datasets import load_dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-steps", type=int, default=40)
    args = ap.parse_args()
    out = Path(args.out)

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    dataset = load_dataset("json", data_files=args.data, split="train")  # chat "messages" rows
    config = SFTConfig(
        output_dir=str(out / "checkpoints"),
        seed=0,
        max_length=96,
        assistant_only_loss=True,
        per_device_train_batch_size=8,
        learning_rate=3e-3,
        max_steps=args.max_steps,
        logging_steps=5,
        save_steps=20,
        save_total_limit=3,
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        bf16=False,
        fp16=False,
    )
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)
    trainer.train()
    trainer.model.save_pretrained(out / "final")
    tokenizer.save_pretrained(out / "final")


if __name__ == "__main__":
    main()
