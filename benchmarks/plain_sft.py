"""SFT with plain trl, the way a user writes it without workbench: the baseline of bench_training.

    python benchmarks/plain_sft.py --model MODEL_DIR --data format-sft.jsonl --out OUT_DIR --max-steps 200

Same model, data and hyperparameters as recipes/sft-tiny.toml (and the same TrainingArguments workbench adds on
a CPU: seed 0, report_to none, no tqdm, save_total_limit 3, fp32). Imports nothing from workbench. Prints trl's
log dicts ({'loss': ...}) to stdout. --gpu (bf16 on the GPU, the model in its saved dtype) and the size flags are
for benchmarks/gpu_check.py, which gives the workbench recipe the same values.
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
    ap.add_argument("--gpu", action="store_true", help="train on the GPU in bf16 (default: the CPU in fp32)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=96)
    ap.add_argument("--logging-steps", type=int, default=5)
    ap.add_argument("--save-steps", type=int, default=20)
    args = ap.parse_args()
    out = Path(args.out)

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    dataset = load_dataset("json", data_files=args.data, split="train")  # chat "messages" rows
    config = SFTConfig(
        output_dir=str(out / "checkpoints"),
        seed=0,
        max_length=args.max_length,
        assistant_only_loss=True,
        per_device_train_batch_size=args.batch_size,
        learning_rate=3e-3,
        max_steps=args.max_steps,
        logging_steps=args.logging_steps,
        save_steps=args.save_steps,
        save_total_limit=3,
        report_to="none",
        disable_tqdm=True,
        use_cpu=not args.gpu,
        bf16=args.gpu,
        fp16=False,
    )
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype="auto" if args.gpu else torch.float32)
    trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)
    trainer.train()
    trainer.model.save_pretrained(out / "final")
    tokenizer.save_pretrained(out / "final")


if __name__ == "__main__":
    main()
