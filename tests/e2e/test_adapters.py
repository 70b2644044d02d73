"""Every [peft] method that runs on a CPU, through `workbench run` on sft-tiny (2 steps): LoRA, DoRA and IA3 end
merged into a plain final/; prompt and prefix tuning keep their adapter in final/ (not merged, said so), and
`run:ID` of such a run trains on (base + adapter)."""
from __future__ import annotations

import json

import pytest
from safetensors import safe_open

from tests.conftest import RECIPES
from tests.e2e.test_stages import rows, run
from workbench.core.models import builtin_dir

pytestmark = pytest.mark.e2e
SHORT = ("train.max_steps=2", "train.save_steps=100", "train.logging_steps=1")


def notes(rd) -> list[str]:
    return [r["message"] for r in rows(rd.metrics_path) if r.get("event") == "note"]


@pytest.mark.parametrize("method", ["lora", "dora", "ia3"])
def test_weight_adapters_train_and_merge(runs_dir, method):
    rd = run(runs_dir, RECIPES / "sft-tiny.toml", f'peft.method="{method}"', *SHORT)
    assert rd.read_status()["state"] == "completed"
    final = rd.final_model
    assert (final / "config.json").is_file() and not (final / "adapter_config.json").exists(), "merged"
    with safe_open(final / "model.safetensors", "pt") as merged, \
            safe_open(builtin_dir("tiny-lm") / "model.safetensors", "pt") as base:
        assert set(merged.keys()) == set(base.keys()), "a plain model: no adapter tensors left"
        changed = [k for k in base.keys() if not (merged.get_tensor(k) == base.get_tensor(k)).all()]
    assert changed, "the trained adapter is in the merged weights"


@pytest.mark.parametrize("method", ["prompt", "prefix"])
def test_prompt_learning_keeps_the_adapter_and_run_id_trains_on(runs_dir, method):
    rd = run(runs_dir, RECIPES / "sft-tiny.toml", f'peft.method="{method}"', "peft.num_virtual_tokens=4", *SHORT)
    assert rd.read_status()["state"] == "completed"  # prefix: only because the child turned checkpointing off
    final = rd.final_model
    marker = json.loads((final / "WORKBENCH_ADAPTER.json").read_text())
    assert marker["merged"] is False and marker["method"] == method
    assert (final / "adapter_config.json").is_file() and not (final / "config.json").exists()
    assert "Not merged" in (final / "README.md").read_text() and (final / "tokenizer.json").is_file()
    assert any("not merged" in n for n in notes(rd)), notes(rd)

    nxt = run(runs_dir, RECIPES / "sft-tiny.toml", f'model.path="run:{rd.id}"', f'peft.method="{method}"', *SHORT)
    assert nxt.read_status()["state"] == "completed"
    assert any("goes on training it" in n for n in notes(nxt)), notes(nxt)
    with safe_open(final / "adapter_model.safetensors", "pt") as a, \
            safe_open(nxt.final_model / "adapter_model.safetensors", "pt") as b:
        assert set(a.keys()) == set(b.keys()), "the same adapter, trained further"
        assert any(not (a.get_tensor(k) == b.get_tensor(k)).all() for k in a.keys())
