"""builtin:tiny-chat: builtin:tiny-lm taught to answer in the reasoning format, built offline on first use.

The policy stages (GRPO, RLOO, PPO, best-of-k, distillation) need a policy that already writes
``<reasoning>...</reasoning><answer>...</answer>``: from the random tiny-lm every completion is noise, every reward
is 0 and GRPO's advantages are all zero, so a first run shows flat lines. tiny-chat is tiny-lm (same shape and
tokenizer) after two short plain-PyTorch passes over the shipped arithmetic data:

  1. pre-training on assets/data/text.jsonl ("What is 2 + 3? 2 plus 3 is 5. The answer is 5. ..."),
  2. supervised fine-tuning on assets/data/format-sft.jsonl (system + question -> the reasoning format), with the
     loss on the assistant's tokens only.

It follows the format 4 times in 5 and gets about one sum in five right when sampling (T 0.9), so the correctness
reward has room to rise within the first minute of a GRPO run. Deterministic (seeded), about 22 s on 2 CPU cores;
the result is cached like the other built-ins (``python -m workbench.train.builtin tiny-chat`` builds it ahead).
The held-out pairs (arith-heldout.jsonl) are in neither file.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

PRETRAIN_STEPS = 300
SFT_STEPS = 300
BATCH = 16
LR = 3e-3
MAX_LENGTH = 96


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _batches(examples: list[tuple[list[int], list[int]]], steps: int, rng: random.Random):
    """``steps`` batches of (input_ids, labels) pairs, reshuffled every epoch."""
    order: list[int] = []
    for _ in range(steps):
        batch = []
        while len(batch) < BATCH:
            if not order:
                order = list(range(len(examples)))
                rng.shuffle(order)
            batch.append(examples[order.pop()])
        yield batch


def _train(model, examples, steps: int, pad_id: int, seed: int) -> float:
    import torch

    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / max(1, steps))
    model.train()
    loss_value = float("nan")
    for batch in _batches(examples, steps, random.Random(seed)):
        width = max(len(ids) for ids, _ in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, (x, y) in enumerate(batch):
            ids[i, :len(x)] = torch.tensor(x)
            labels[i, :len(y)] = torch.tensor(y)
            mask[i, :len(x)] = 1
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        loss_value = loss.item()
    return loss_value


def pretrain_examples(tokenizer, rows: list[dict]) -> list[tuple[list[int], list[int]]]:
    out = []
    for r in rows:
        ids = tokenizer(r["text"])["input_ids"][:MAX_LENGTH - 1] + [tokenizer.eos_token_id]
        out.append((ids, ids))
    return out


def sft_examples(tokenizer, rows: list[dict]) -> list[tuple[list[int], list[int]]]:
    """The conversation through the chat template; labels only on the assistant's tokens (the template's
    generation markers), like trl's assistant_only_loss."""
    out = []
    for r in rows:
        enc = tokenizer.apply_chat_template(r["messages"], tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True)
        ids = list(enc["input_ids"])[:MAX_LENGTH]
        keep = list(enc["assistant_masks"])[:MAX_LENGTH]
        out.append((ids, [t if k else -100 for t, k in zip(ids, keep)]))
    return out


def build(base: Path, target: Path, assets: Path) -> dict:
    """Train tiny-chat from the tiny-lm folder ``base`` into ``target`` (written by the caller's atomic rename);
    returns what was done (steps, final losses) for the folder's BUILD.json."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base)
    pad = tokenizer.pad_token_id
    text = pretrain_examples(tokenizer, _rows(assets / "text.jsonl"))
    chat = sft_examples(tokenizer, _rows(assets / "format-sft.jsonl"))
    pre_loss = _train(model, text, PRETRAIN_STEPS, pad, seed=1)
    sft_loss = _train(model, chat, SFT_STEPS, pad, seed=2)
    model.eval()
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    info = {"base": "builtin:tiny-lm", "pretrain": {"data": "assets/data/text.jsonl", "steps": PRETRAIN_STEPS,
                                                     "final_loss": round(pre_loss, 4)},
            "sft": {"data": "assets/data/format-sft.jsonl", "steps": SFT_STEPS, "final_loss": round(sft_loss, 4)},
            "batch_size": BATCH, "learning_rate": LR}
    (target / "BUILD.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return info
