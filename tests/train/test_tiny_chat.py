"""builtin:tiny-chat, where the policy stages start: built from tiny-lm on first use (plain PyTorch, the shipped
text and format data), deterministic, and it answers in the reasoning format, unlike the untrained tiny-lm."""
from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from tests.conftest import ASSETS  # noqa: E402
from workbench.core import evals  # noqa: E402
from workbench.train import evaluate  # noqa: E402
from workbench.train.builtin import SYSTEM_PROMPT, ensure_builtin  # noqa: E402


def format_rate(name: str, rows, k: int = 1, temperature: float = 0.0) -> dict:
    model, tokenizer = evaluate.load_model(str(ensure_builtin(name)), None, torch.device("cpu"))
    items = evaluate.eval_items(rows)
    torch.manual_seed(0)
    records = evaluate.run(model, tokenizer, items, k=k, temperature=temperature, max_new_tokens=32, batch_size=16)
    return evals.summarize(records, k)


def test_tiny_chat_answers_in_the_format_and_tiny_lm_does_not():
    folder = ensure_builtin("tiny-chat")
    build = json.loads((folder / "BUILD.json").read_text())
    assert build["base"] == "builtin:tiny-lm" and build["sft"]["steps"] > 0
    assert (folder / "READY").is_file() and (folder / "tokenizer.json").is_file()
    rows = evaluate.load_rows(str(ASSETS / "arith-prompts.jsonl"), SYSTEM_PROMPT).select(range(24))
    chat = format_rate("tiny-chat", rows, k=2, temperature=0.9)  # how a GRPO run samples it
    base = format_rate("tiny-lm", rows)
    print("tiny-chat", chat, "tiny-lm", base)
    assert chat["format_rate"] >= 0.7, chat
    assert base["format_rate"] == 0.0, base
    assert 0.0 < chat["accuracy"] < 0.9, f"room for the correctness reward to rise: {chat}"
