"""Batched sampling for the stages that generate data (best-of-K curation, offline distillation) and for
evaluations (workbench/train/evaluate.py).

Every model that generates or scores here runs on ``training_device``: the device the stage's trainer would
train on, so a GPU machine does not sample on the CPU. ``sample`` and ``score_with_model`` put their inputs on
the model's own device.
"""
from __future__ import annotations

import os
from dataclasses import dataclass


def training_device(train_kwargs: dict | None = None):
    """The trainer's device choice: this process's GPU (LOCAL_RANK under torchrun) when CUDA is available and
    the recipe does not ask for ``use_cpu``, else the CPU."""
    import torch

    if torch.cuda.is_available() and not (train_kwargs or {}).get("use_cpu", False):
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def chat_prompt(tokenizer, prompt) -> str:
    """The model's chat template applied (with the generation prompt); a base model without a template gets the
    messages' text, one per paragraph."""
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    if not getattr(tokenizer, "chat_template", None):
        return "\n\n".join(str(m.get("content", "")) for m in prompt) + "\n"
    return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)


def sample(model, tokenizer, prompts: list, k: int, max_new_tokens: int, temperature: float,
           batch_size: int) -> list[list[str]]:
    """k completions (text) for each prompt (text or chat messages)."""
    return [[c.text for c in cs] for cs in
            generate(model, tokenizer, prompts, k, max_new_tokens, temperature, batch_size)]


@dataclass(frozen=True)
class Completion:
    text: str
    tokens: int  # generated tokens, the closing eos included
    ended: bool  # stopped at an eos token (not at max_new_tokens)


def generate(model, tokenizer, prompts: list, k: int, max_new_tokens: int, temperature: float,
             batch_size: int) -> list[list[Completion]]:
    """k completions for each prompt (text or chat messages), with their lengths; the model is left in eval mode.
    Left padding for generation; the tokenizer's padding side is restored afterwards (a trainer may share it)."""
    import torch

    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    eos = _eos_ids(model, tokenizer)
    model.eval()
    out: list[list[Completion]] = []
    texts = [chat_prompt(tokenizer, p) for p in prompts]
    try:
        for i in range(0, len(texts), batch_size):
            chunk = texts[i:i + batch_size]
            enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
            kwargs = dict(max_new_tokens=max_new_tokens, num_return_sequences=k,
                          pad_token_id=tokenizer.pad_token_id)
            if temperature > 0:
                kwargs.update(do_sample=True, temperature=temperature)
            else:
                kwargs.update(do_sample=False)
            with torch.no_grad():
                ids = model.generate(**enc, **kwargs)
            new = ids[:, enc["input_ids"].shape[1]:].tolist()
            decoded = tokenizer.batch_decode(new, skip_special_tokens=True)
            done = [_length(row, eos, tokenizer.pad_token_id) for row in new]
            items = [Completion(t, n, e) for t, (n, e) in zip(decoded, done)]
            out.extend(items[j * k:(j + 1) * k] for j in range(len(chunk)))
    finally:
        tokenizer.padding_side = side
    return out


def _eos_ids(model, tokenizer) -> set[int]:
    ids = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    found = set(ids if isinstance(ids, (list, tuple)) else [ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None:
        found.add(tokenizer.eos_token_id)
    return found


def _length(row: list[int], eos: set[int], pad: int | None) -> tuple[int, bool]:
    """(generated tokens up to and including the first eos, whether an eos ended it)."""
    for i, t in enumerate(row):
        if t in eos:
            return i + 1, True
    n = len(row)
    while n and row[n - 1] == pad:  # padding after a sequence that stopped early (pad is not an eos here)
        n -= 1
    return n, False


def score_with_model(rm, tokenizer, prompts: list, completions: list[str], batch_size: int = 16) -> list[float]:
    """Scalar scores from a sequence-classification reward model on prompt + completion chats."""
    import torch

    tokenizer.padding_side = "right"
    texts = []
    for p, c in zip(prompts, completions):
        msgs = ([{"role": "user", "content": p}] if isinstance(p, str) else list(p)) + [
            {"role": "assistant", "content": c}]
        texts.append(tokenizer.apply_chat_template(msgs, tokenize=False))
    scores: list[float] = []
    rm.eval()
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(texts[i:i + batch_size], return_tensors="pt", padding=True, truncation=True,
                        max_length=512, add_special_tokens=False).to(rm.device)
        with torch.no_grad():
            scores.extend(rm(**enc).logits[:, 0].float().tolist())
    return scores
