"""Generation stages run on the trainer's device: the device choice, the inputs following the model, and
best-of-k / distill-offline putting their generating and scoring models there.

This machine has no GPU, so "the training device" is simulated with torch.cuda.is_available patched (for the
choice) and with the meta device (for where models and inputs end up).
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

from workbench.train import generate  # noqa: E402

META = torch.device("meta")


@pytest.mark.parametrize("cuda, train_kwargs, local_rank, expected", [
    (False, {}, None, "cpu"),
    (False, {"use_cpu": False}, None, "cpu"),
    (True, {}, None, "cuda:0"),
    (True, {"use_cpu": False}, "1", "cuda:1"),  # each torchrun process on its own GPU
    (True, {"use_cpu": True}, None, "cpu"),
])
def test_training_device_is_the_trainers_choice(monkeypatch, cuda, train_kwargs, local_rank, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    if local_rank is None:
        monkeypatch.delenv("LOCAL_RANK", raising=False)
    else:
        monkeypatch.setenv("LOCAL_RANK", local_rank)
    assert generate.training_device(train_kwargs) == torch.device(expected)


def test_cpu_run_kwargs_choose_the_cpu_even_with_a_gpu(monkeypatch, stage_ctx):
    """A recipe that sets use_cpu keeps generation on the CPU like its trainer, GPU or not."""
    ctx = stage_ctx("best-of-k-tiny.toml", "train.use_cpu=true")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert generate.training_device(ctx.train_kwargs) == torch.device("cpu")


class FakeLM:
    """Records the device of the inputs it is given; answers with fixed tokens."""

    device = META

    def __init__(self, tokenizer):
        self.tokenizer, self.seen = tokenizer, []

    def eval(self):
        return self

    def generate(self, input_ids, attention_mask, num_return_sequences, **kw):
        self.seen += [input_ids.device, attention_mask.device]
        answer = torch.tensor(self.tokenizer("<answer>4</answer>")["input_ids"])
        rows = input_ids.shape[0] * num_return_sequences
        return torch.cat([torch.zeros(rows, input_ids.shape[1], dtype=torch.long), answer.repeat(rows, 1)], dim=1)

    def __call__(self, input_ids, attention_mask):
        self.seen += [input_ids.device, attention_mask.device]
        return SimpleNamespace(logits=torch.ones(input_ids.shape[0], 1))


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from workbench.train.builtin import ensure_builtin

    return AutoTokenizer.from_pretrained(ensure_builtin("tiny-lm"))


def test_sample_puts_inputs_on_the_models_device(tokenizer):
    lm = FakeLM(tokenizer)
    out = generate.sample(lm, tokenizer, ["What is 2 + 2?", "What is 1 + 3?"], k=2, max_new_tokens=8,
                          temperature=0.0, batch_size=2)
    assert out == [["<answer>4</answer>"] * 2] * 2
    assert lm.seen and set(lm.seen) == {META}


def test_score_with_model_puts_inputs_on_the_models_device(tokenizer):
    rm = FakeLM(tokenizer)
    scores = generate.score_with_model(rm, tokenizer, ["What is 2 + 2?"] * 3, ["4", "5", "four"], batch_size=2)
    assert scores == [1.0, 1.0, 1.0]
    assert len(rm.seen) == 4 and set(rm.seen) == {META}


def record_devices(monkeypatch):
    """Patches the training device to meta and the sampling/scoring to record the models' devices."""
    seen = {}

    def fake_sample(model, tokenizer, prompts, k, **kw):
        seen.setdefault("generator", set()).add(next(model.parameters()).device)
        return [["<reasoning>x</reasoning><answer>1</answer>"] * k for _ in prompts]

    def fake_score(rm, tokenizer, prompts, completions, **kw):
        seen.setdefault("reward_model", set()).add(next(rm.parameters()).device)
        return [0.5] * len(completions)

    monkeypatch.setattr(generate, "training_device", lambda train_kwargs=None: META)
    monkeypatch.setattr(generate, "sample", fake_sample)
    monkeypatch.setattr(generate, "score_with_model", fake_score)
    return seen


def test_best_of_k_generates_and_scores_on_the_training_device(monkeypatch, stage_ctx):
    from workbench.train.stages import BUILDERS

    seen = record_devices(monkeypatch)
    ctx = stage_ctx("best-of-k-tiny.toml", 'model.reward_model="builtin:tiny-rm"', "data.max_samples=4")
    BUILDERS["best-of-k"](ctx).train()
    assert seen == {"generator": {META}, "reward_model": {META}}
    assert (ctx.rd.path / "dataset.jsonl").read_text().count("\n") == 4


def test_distill_offline_teacher_answers_on_the_training_device(monkeypatch, stage_ctx):
    from workbench.train.stages import BUILDERS

    seen = record_devices(monkeypatch)
    ctx = stage_ctx("distill-offline-tiny.toml", "data.max_samples=4", "train.max_steps=1")
    trainer = BUILDERS["distill-offline"](ctx)
    assert seen == {"generator": {META}}
    assert next(trainer.model.parameters()).device == torch.device("cpu"), "the student is the trainer's to place"
