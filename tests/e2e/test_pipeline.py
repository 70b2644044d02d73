"""End to end: a pipeline folder runs its stages in order, each from the previous stage's final model."""
from __future__ import annotations

import subprocess

import pytest

from tests.conftest import RECIPES, workbench_cmd
from workbench.core.recipe import Recipe
from workbench.core.rundir import RunDir

pytestmark = pytest.mark.e2e


def shrink(src, dst, **train):
    r = Recipe.load(src)
    for k, v in train.items():
        r.set(f"train.{k}", v)
    r.set("data.path", str(r.resolve_path(r.get("data.path"))))
    r.save(dst)


def test_pipeline_chains_pretrain_sft_grpo(runs_dir, tmp_path):
    demo = RECIPES / "demo"
    pipe = tmp_path / "mini"
    pipe.mkdir()
    shrink(demo / "01-pretrain.toml", pipe / "01-pretrain.toml", max_steps=3)
    shrink(demo / "02-sft.toml", pipe / "02-sft.toml", max_steps=3)
    shrink(demo / "03-grpo.toml", pipe / "03-grpo.toml", max_steps=2)
    proc = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "pipeline", str(pipe)),
                          capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = sorted((RunDir(p) for p in runs_dir.iterdir()), key=lambda r: r.read_status()["pipeline_step"])
    assert [r.read_status()["stage"] for r in runs] == ["pretrain", "sft", "grpo"]
    assert runs[1].read_status()["parent"] == runs[0].id
    assert f'"run:{runs[1].id}"' in runs[2].recipe_path.read_text(), "run:previous resolved to the SFT run"
    assert all(r.read_status()["state"] == "completed" for r in runs)


def test_pipeline_validates_every_stage_before_starting(runs_dir, tmp_path):
    pipe = tmp_path / "broken"
    pipe.mkdir()
    shrink(RECIPES / "demo" / "01-pretrain.toml", pipe / "01-pretrain.toml", max_steps=3)
    (pipe / "02-sft.toml").write_text((RECIPES / "demo" / "02-sft.toml").read_text().replace(
        "max_steps = 300", "max_stepz = 300"))
    proc = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "pipeline", str(pipe)),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "02-sft.toml" in proc.stderr and "max_stepz" in proc.stderr and "did you mean 'max_steps'" in proc.stderr
    assert not any(runs_dir.iterdir()), "nothing started"


def test_run_previous_outside_a_pipeline_is_explained(tmp_path):
    proc = subprocess.run(workbench_cmd("validate", str(RECIPES / "demo" / "02-sft.toml")),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "workbench pipeline" in proc.stderr
