"""save_final through real trl trainers on the built-in tiny models: final/ holds the trained weights (merged
for LoRA, with a reward model's trained score head) and loads as a plain model."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

from safetensors.torch import load_file  # noqa: E402

from workbench.train.finalize import merge_adapter, save_final, trained_config  # noqa: E402
from workbench.train.stages import BUILDERS  # noqa: E402

SHORT = ("train.max_steps=3", "train.save_steps=100", "train.logging_steps=1")


def trained(ctx):
    trainer = BUILDERS[ctx.recipe.stage](ctx)
    trainer.train()
    return trainer


def plain_state(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def merged_state(peft_model) -> dict:
    """What merging the trained adapter in place gives: the reference for final/."""
    return plain_state(copy.deepcopy(peft_model).merge_and_unload())


def assert_weights(final_dir, expected: dict, base_dir) -> None:
    saved = load_file(final_dir / "model.safetensors")
    assert set(saved) == set(load_file(base_dir / "model.safetensors")), "same tensors as a plain model"
    for name, tensor in saved.items():
        torch.testing.assert_close(tensor, expected[name], rtol=1e-5, atol=1e-6, msg=name)
    base = load_file(base_dir / "model.safetensors")
    assert any(not torch.equal(base[n], saved[n]) for n in saved), "training changed the weights"


def assert_clean_final(ctx) -> None:
    final = ctx.rd.final_model
    assert not (final / "adapter_config.json").exists(), "merged: a plain model, not an adapter"
    assert not (final / "training_args.bin").exists()
    assert (final / "tokenizer.json").is_file() and (final / "config.json").is_file()
    assert sorted(p.name for p in ctx.rd.path.iterdir() if p.name.startswith("final")) == ["final"]


def test_full_model_final_is_the_trained_weights(stage_ctx):
    from transformers import AutoModelForCausalLM

    ctx = stage_ctx("sft-tiny.toml", *SHORT)
    trainer = trained(ctx)
    expected = plain_state(trainer.model)
    (ctx.rd.final_model / "stale").mkdir(parents=True)  # an earlier, stopped attempt of a resumed run
    save_final(trainer, ctx)
    assert not (ctx.rd.final_model / "stale").exists()
    assert_clean_final(ctx)
    assert_weights(ctx.rd.final_model, expected, Path(ctx.model_path))
    model = AutoModelForCausalLM.from_pretrained(ctx.rd.final_model)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, expected[name]), name


def test_lora_causal_lm_final_is_merged(stage_ctx, tmp_path):
    from transformers import AutoModelForCausalLM
    from transformers.integrations.deepspeed import (HfDeepSpeedConfig, is_deepspeed_zero3_enabled,
                                                     unset_hf_deepspeed_config)

    ctx = stage_ctx("sft-tiny.toml", *SHORT, 'peft.method="lora"')
    trainer = trained(ctx)
    expected = merged_state(trainer.model)
    save_final(trainer, ctx)
    assert_clean_final(ctx)
    assert_weights(ctx.rd.final_model, expected, Path(ctx.model_path))
    AutoModelForCausalLM.from_pretrained(ctx.rd.final_model)

    # Under a ZeRO-3 trainer every from_pretrained would partition (a collective); the merge must not.
    trainer.save_model(str(tmp_path / "adapter"))
    zero3 = HfDeepSpeedConfig({"train_batch_size": 1, "zero_optimization": {"stage": 3}})
    try:
        assert is_deepspeed_zero3_enabled()
        merge_adapter(tmp_path / "adapter", tmp_path / "merged", ctx, trained_config(trainer))
        assert is_deepspeed_zero3_enabled(), "the trainer's ZeRO-3 switch is restored"
    finally:
        unset_hf_deepspeed_config()
    assert_weights(tmp_path / "merged", expected, Path(ctx.model_path))


@pytest.mark.parametrize("base", ["builtin:tiny-rm", "builtin:tiny-lm"])  # tiny-lm: a fresh score head
def test_lora_reward_model_keeps_its_trained_head(stage_ctx, base):
    from transformers import AutoModelForSequenceClassification

    ctx = stage_ctx("reward-tiny.toml", *SHORT, 'peft.method="lora"', f'model.path="{base}"',
                    "train.learning_rate=1e-2")
    trainer = BUILDERS["reward"](ctx)
    assert trainer.model.peft_config["default"].task_type == "SEQ_CLS"
    head = trainer.model.base_model.model.score
    head_before = head.modules_to_save["default"].weight.detach().clone()
    trainer.train()
    head_after = head.modules_to_save["default"].weight.detach().clone()
    assert not torch.equal(head_before, head_after), "the score head trains"
    expected = merged_state(trainer.model)

    save_final(trainer, ctx)
    assert_clean_final(ctx)
    assert json.loads((ctx.rd.final_model / "config.json").read_text())["architectures"] == [
        "Qwen2ForSequenceClassification"]
    rm = AutoModelForSequenceClassification.from_pretrained(ctx.rd.final_model).eval()
    assert torch.equal(rm.score.weight, head_after)
    for name, tensor in rm.state_dict().items():
        torch.testing.assert_close(tensor, expected[name], rtol=1e-5, atol=1e-6, msg=name)
    enc = ctx.tokenizer(["<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n", "a model learns"], return_tensors="pt",
                        padding=True)
    with torch.no_grad():
        trainer.model.eval()
        torch.testing.assert_close(rm(**enc).logits, trainer.model(**enc).logits, rtol=1e-4, atol=1e-5)


def test_ppo_final_is_the_policy_only(stage_ctx):
    from transformers import AutoModelForCausalLM

    ctx = stage_ctx("ppo-tiny.toml", "train.total_episodes=8", "train.save_steps=100")
    trainer = trained(ctx)
    expected = plain_state(trainer.model.policy)
    save_final(trainer, ctx)
    assert_clean_final(ctx)
    assert_weights(ctx.rd.final_model, expected, Path(ctx.model_path))
    assert AutoModelForCausalLM.from_pretrained(ctx.rd.final_model).config.architectures == ["Qwen2ForCausalLM"]


class RecordingTrainer:
    """Stands in for a trainer on a rank that is not the main process."""

    model = object()

    def __init__(self):
        self.saved_to = []

    def save_model(self, output_dir):
        self.saved_to.append(output_dir)


def test_every_rank_joins_the_save_but_only_the_main_one_writes(tmp_path):
    from workbench.core.rundir import RunDir

    rd = RunDir(tmp_path / "run")
    rd.path.mkdir()
    other_rank = RecordingTrainer()
    save_final(other_rank, SimpleNamespace(rd=rd, is_main=False, tokenizer=None))
    assert other_rank.saved_to == [str(rd.path / "final.tmp")], "joined the trainer's gathering save"
    assert list(rd.path.iterdir()) == []


def test_a_stage_without_a_model_saves_nothing(tmp_path):
    from workbench.core.rundir import RunDir
    from workbench.train.stages.curate import Curation

    rd = RunDir(tmp_path / "run")
    rd.path.mkdir()
    save_final(Curation(None), SimpleNamespace(rd=rd, is_main=True, tokenizer=None))
    assert list(rd.path.iterdir()) == []


@pytest.mark.parametrize("method", ["dora", "ia3"])
def test_dora_and_ia3_finals_are_merged(stage_ctx, method):
    ctx = stage_ctx("sft-tiny.toml", *SHORT, f'peft.method="{method}"', "train.learning_rate=5e-2")
    trainer = trained(ctx)
    expected = merged_state(trainer.model)
    save_final(trainer, ctx)
    assert_clean_final(ctx)
    assert_weights(ctx.rd.final_model, expected, Path(ctx.model_path))


def test_prompt_tuning_final_keeps_the_adapter_and_loads_on_its_base(stage_ctx):
    from transformers import AutoModelForCausalLM

    from workbench.core.peft_methods import unmerged_method
    from workbench.train.adapters import load_with_adapter

    ctx = stage_ctx("sft-tiny.toml", *SHORT, 'peft.method="prompt"', "peft.num_virtual_tokens=3")
    trainer = trained(ctx)
    trained_tokens = trainer.model.get_prompt_embedding_to_save("default").detach().clone()
    save_final(trainer, ctx)
    final = ctx.rd.final_model
    assert unmerged_method(final) == "prompt" and not (final / "training_args.bin").exists()
    assert json.loads((final / "WORKBENCH_ADAPTER.json").read_text())["base"] == ctx.model_path
    assert (final / "tokenizer.json").is_file()

    for trainable in (True, False):
        model = load_with_adapter(AutoModelForCausalLM, final, trainable=trainable, dtype=torch.float32)
        torch.testing.assert_close(model.get_prompt_embedding_to_save("default"), trained_tokens)
        grads = {p.requires_grad for p in model.prompt_encoder["default"].parameters()}
        assert grads == {trainable}
        assert not any(p.requires_grad for p in model.base_model.parameters()), "the base stays frozen"
