"""PPO checkpoints on the built-in tiny models: what a save holds, what a fresh trainer restores, the stop save."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("trl.experimental.ppo")

import torch  # noqa: E402

from tests.conftest import RECIPES  # noqa: E402
from workbench.core.recipe import Recipe  # noqa: E402
from workbench.core.rundir import RunDir  # noqa: E402
from workbench.train import data  # noqa: E402
from workbench.train.callbacks import RunLogger, StopControl, StopRequested  # noqa: E402
from workbench.train.entry import Context, resolve_model, train_kwargs  # noqa: E402
from workbench.train.ppo_resume import STATE_FILE, complete_checkpoints  # noqa: E402
from workbench.train.stages.ppo import build_ppo  # noqa: E402


def build(path, **train):
    """The PPO trainer the training child builds for recipes/ppo-tiny.toml, with [train] overrides."""
    from transformers import AutoTokenizer, set_seed

    set_seed(0)
    path.mkdir(exist_ok=True)
    rd = RunDir(path)
    recipe = Recipe.load(RECIPES / "ppo-tiny.toml")
    recipe.set("data.path", str(recipe.resolve_path(recipe.get("data.path"))))
    recipe.set("data.max_samples", 16)
    ctx = Context(recipe, rd, True, resolve_model(recipe.get("model.path"), rd))
    ctx.tokenizer = AutoTokenizer.from_pretrained(ctx.model_path)
    ctx.dataset = data.load(recipe)
    ctx.train_kwargs = {**train_kwargs(recipe, rd), "response_length": 8, **train}
    ctx.logger, ctx.stop = RunLogger(rd, True), StopControl(rd)
    ctx.callbacks = [ctx.logger, ctx.stop]
    return build_ppo(ctx), rd


def events(rd, name):
    rows = [json.loads(line) for line in rd.metrics_path.read_text().splitlines()]
    return [r for r in rows if r.get("event") == name]


def assert_same_tensors(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def assert_same_optimizer(a: dict, b: dict):
    assert a["param_groups"] == b["param_groups"]
    assert a["state"].keys() == b["state"].keys() and a["state"]
    for i in a["state"]:
        for k, v in a["state"][i].items():
            assert torch.equal(torch.as_tensor(v), torch.as_tensor(b["state"][i][k])), (i, k)


def test_save_then_restore_into_a_fresh_trainer_then_continue(tmp_path):
    first, rd = build(tmp_path / "a", max_steps=2, save_steps=1, save_total_limit=1)
    first.train()
    (ckpt,) = complete_checkpoints(rd.checkpoints)  # save_total_limit=1 removed checkpoint-1
    assert ckpt.name == "checkpoint-2" and (ckpt / "value_model" / "config.json").is_file()
    done = first.accelerator.unwrap_model(first.model)

    second, rd2 = build(tmp_path / "b", max_steps=3, save_steps=100)
    fresh = second.accelerator.unwrap_model(second.model)
    assert not torch.equal(fresh.policy.lm_head.weight, done.policy.lm_head.weight), "a fresh trainer differs"
    saved = second.load_checkpoint(ckpt)
    assert saved.global_step == 2 and saved.episode == 8
    assert_same_tensors(fresh.policy.state_dict(), done.policy.state_dict())
    assert_same_tensors(fresh.value_model.state_dict(), done.value_model.state_dict())
    assert_same_optimizer(second.optimizer.state_dict(), first.optimizer.state_dict())
    assert second.lr_scheduler.state_dict() == first.lr_scheduler.state_dict()
    assert torch.equal(torch.get_rng_state(), torch.load(ckpt / "rng_state.pth", weights_only=False)["cpu"])

    second.train(resume_from_checkpoint=ckpt)  # loads again: harmless, and what entry.py does
    assert second.state.global_step == 3 and second.state.max_steps == 3
    assert [e["step"] for e in events(rd2, "train_begin")] == [2]
    assert events(rd2, "train_begin")[0]["max_steps"] == 3
    logged = [json.loads(line)["step"] for line in rd2.metrics_path.read_text().splitlines()
              if "objective/kl" in line]
    assert logged == [3], "one more update, numbered after the checkpoint"


def test_stop_request_saves_the_stop_step_with_trainer_state_last(tmp_path):
    trainer, rd = build(tmp_path / "a", max_steps=3, save_steps=100)
    rd.stop_request_path.touch()
    with pytest.raises(StopRequested):
        trainer.train()
    (ckpt,) = complete_checkpoints(rd.checkpoints)
    assert ckpt.name == "checkpoint-1"
    assert json.loads((ckpt / STATE_FILE).read_text())["global_step"] == 1
    files = [p for p in ckpt.rglob("*") if p.is_file()]
    assert max(files, key=lambda p: p.stat().st_mtime_ns).name == STATE_FILE
    assert [e["step"] for e in events(rd, "checkpoint")] == [1]


def test_a_save_that_fails_leaves_no_trainer_state(tmp_path, monkeypatch):
    trainer, rd = build(tmp_path / "a", max_steps=1, save_steps=1)
    value = trainer.accelerator.unwrap_model(trainer.model).value_model

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(value, "save_pretrained", disk_full)
    with pytest.raises(OSError):
        trainer.train()
    assert (rd.checkpoints / "checkpoint-1").is_dir()
    assert not (rd.checkpoints / "checkpoint-1" / STATE_FILE).exists()
    assert complete_checkpoints(rd.checkpoints) == []
