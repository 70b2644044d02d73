"""The training child runs only what was approved: a reward file only as the run's sealed copy with its recorded
SHA-256, trust_remote_code only for recorded, unchanged model code, run: only inside the runs directory."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ASSETS, RECIPES
from workbench.core import supervisor, trust
from workbench.core.paths import cache_dir
from workbench.core.recipe import Recipe
from workbench.core.rundir import RunDir
from workbench.train import rewards

REWARD = "def short(completions, **kwargs):\n    return [0.5 for _ in completions]\n"


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Approvals of this test only; the shared trl schema and built-in models (slow to make) stay shared."""
    shared, cache = cache_dir(), tmp_path / "cache"
    cache.mkdir()
    for name in ("schema", "models"):
        if (shared / name).is_dir():
            (cache / name).symlink_to(shared / name, target_is_directory=True)
    monkeypatch.setenv("WORKBENCH_CACHE", str(cache))


def sealed_reward_run(tmp_path, runs_dir) -> RunDir:
    f = tmp_path / "r.py"
    f.write_text(REWARD)
    r = Recipe.load(RECIPES / "grpo-tiny.toml")
    r.set("rewards.funcs", ["format", f"{f}:short"])
    trust.approve(trust.unapproved(r))
    return supervisor.prepare(r, runs_dir)


def sealed_model_run(tmp_path, runs_dir) -> tuple[RunDir, object]:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "custom", "auto_map": {}}))
    (folder / "model.safetensors").write_bytes(b"")
    (folder / "tokenizer.json").write_text("{}")
    (folder / "modeling_custom.py").write_text("class M:\n    pass\n")
    r = Recipe.load(RECIPES / "sft-tiny.toml")
    r.set("model.path", str(folder))
    r.set("model.trust_remote_code", True)
    r.set("data.path", str(ASSETS / "format-sft.jsonl"))
    trust.approve(trust.unapproved(r))
    return supervisor.prepare(r, runs_dir), folder


def edit(path, text) -> None:
    path.chmod(0o600)  # the sealed copy is read-only: an edit is deliberate
    path.write_text(text)


# -- reward files -------------------------------------------------------------------------------------------------
def test_child_imports_the_sealed_copy(tmp_path, runs_dir):
    rd = sealed_reward_run(tmp_path, runs_dir)
    (tmp_path / "r.py").write_text("def short(completions, **kwargs):\n    raise SystemExit('edited source')\n")
    fmt, short = rewards.load_all(Recipe.load(rd.recipe_path).get("rewards.funcs"))
    assert short(["a", "b"]) == [0.5, 0.5], "the approved bytes run, not the edited source"
    assert fmt is rewards.format


def test_child_refuses_an_edited_copy(tmp_path, runs_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rd = sealed_reward_run(tmp_path, runs_dir)
    edit(rd.path / "code" / "r.py", REWARD + "open('pwned', 'w')\n")
    with pytest.raises(trust.ConsentError, match="changed after it was approved"):
        rewards.load_all(Recipe.load(rd.recipe_path).get("rewards.funcs"))
    assert not (tmp_path / "pwned").exists(), "nothing of the edited file ran"


def test_child_refuses_a_reward_file_that_is_not_the_sealed_copy(tmp_path, runs_dir):
    rd = sealed_reward_run(tmp_path, runs_dir)
    other = tmp_path / "other.py"
    other.write_text(REWARD)
    with pytest.raises(trust.ConsentError, match="not a reward file approved for this run"):
        rewards.load_all([f"{other}:short"])  # e.g. a recipe.toml edited by hand
    fake_code = tmp_path / "elsewhere" / "code"  # a code/ folder with no record beside it
    fake_code.mkdir(parents=True)
    (fake_code / "r.py").write_text(REWARD)
    with pytest.raises(trust.ConsentError):
        rewards.load_all([f"{fake_code / 'r.py'}:short"])
    assert rd.exists()


# -- trust_remote_code --------------------------------------------------------------------------------------------
def test_remote_code_only_as_approved(tmp_path, runs_dir):
    rd, folder = sealed_model_run(tmp_path, runs_dir)
    recipe = Recipe.load(rd.recipe_path)
    assert trust.remote_code_allowed(recipe, rd.path) is True
    (folder / "modeling_custom.py").write_text("import os\n")
    with pytest.raises(trust.ConsentError, match="model's Python code changed"):
        trust.remote_code_allowed(recipe, rd.path)
    recipe.set("model.trust_remote_code", False)
    assert trust.remote_code_allowed(recipe, rd.path) is False


def test_remote_code_switched_on_after_launch_is_refused(tmp_path, runs_dir):
    rd = sealed_reward_run(tmp_path, runs_dir)  # launched without trust_remote_code
    recipe = Recipe.load(rd.recipe_path)
    recipe.set("model.path", str(tmp_path))
    recipe.set("model.trust_remote_code", True)  # recipe.toml edited by hand
    with pytest.raises(trust.ConsentError, match="not approved for this model"):
        trust.remote_code_allowed(recipe, rd.path)


def test_context_checks_right_before_each_load(tmp_path, runs_dir):
    from workbench.train.entry import Context

    rd, folder = sealed_model_run(tmp_path, runs_dir)
    ctx = Context(Recipe.load(rd.recipe_path), rd, True, str(folder))
    assert ctx.model_kwargs()["trust_remote_code"] is True
    (folder / "modeling_custom.py").write_text("import os\n")
    with pytest.raises(trust.ConsentError):
        ctx.model_kwargs()


def test_child_run_fails_clearly_when_model_code_changed(tmp_path, runs_dir):
    rd, folder = sealed_model_run(tmp_path, runs_dir)
    (folder / "modeling_custom.py").write_text("import os\nos.system('touch pwned')\n")
    proc = subprocess.run([sys.executable, "-m", "workbench.train", str(rd.path)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    st = rd.read_status()
    assert st["error_type"] == "ConsentError" and "changed after it was approved" in st["error"], st
    assert not (tmp_path / "pwned").exists()


# -- run: references ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ref", ["run:../x", "run:a/b", "run:.."])
def test_resolve_model_stays_inside_the_runs_dir(runs_dir, ref):
    from workbench.train.entry import resolve_model

    (runs_dir.parent / "x" / "final").mkdir(parents=True)
    (runs_dir / "a" / "b" / "final").mkdir(parents=True)
    with pytest.raises(ValueError, match="not a run id"):
        resolve_model(ref, RunDir(runs_dir / "20260101-000000-me"))
