"""Consent before a recipe's own code runs: reward files and trust_remote_code models are asked once per content,
the approved code is sealed into the run directory at launch, and a later edit is refused on resume.
run: references stay inside the runs directory."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.conftest import ASSETS, RECIPES, workbench_cmd
from workbench.core import supervisor, trust
from workbench.core.paths import cache_dir
from workbench.core.problems import BadInput
from workbench.core.recipe import Recipe
from workbench.core.validate import validate_recipe

REWARD = "def short(completions, **kwargs):\n    return [0.0 for _ in completions]\n"


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Approvals of this test only; the shared trl schema and built-in models (slow to make) stay shared."""
    shared, cache = cache_dir(), tmp_path / "cache"
    cache.mkdir()
    for name in ("schema", "models"):
        if (shared / name).is_dir():
            (cache / name).symlink_to(shared / name, target_is_directory=True)
    monkeypatch.setenv("WORKBENCH_CACHE", str(cache))
    return cache


def recipe_with(reward_file) -> Recipe:
    r = Recipe.load(RECIPES / "grpo-tiny.toml")
    r.set("rewards.funcs", ["format", f"{reward_file}:short"])
    return r


def model_folder(path, code="class M:\n    pass\n"):
    """A folder that passes the light model checks, with custom code (what trust_remote_code would import)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"model_type": "custom", "auto_map": {
        "AutoModelForCausalLM": "modeling_custom.M"}}))
    (path / "model.safetensors").write_bytes(b"")
    (path / "tokenizer.json").write_text("{}")
    (path / "modeling_custom.py").write_text(code)
    return path


def remote_code_recipe(folder) -> Recipe:
    r = Recipe.load(RECIPES / "sft-tiny.toml")
    r.set("model.path", str(folder))
    r.set("model.trust_remote_code", True)
    return r


# -- asking ------------------------------------------------------------------------------------------------------
def test_approval_is_per_file_content(tmp_path):
    f = tmp_path / "r.py"
    f.write_text(REWARD)
    r = recipe_with(f)
    assert [i.path for i in trust.unapproved(r)] == [f]
    assert "def short" in trust.review_text(trust.unapproved(r))
    trust.approve(trust.unapproved(r))
    assert trust.unapproved(r) == []
    f.write_text(f.read_text() + "import os\n")  # edited: ask again
    assert [i.path for i in trust.unapproved(r)] == [f]


def test_builtin_rewards_and_models_need_no_consent():
    r = Recipe.load(RECIPES / "grpo-tiny.toml")
    r.set("model.trust_remote_code", True)  # builtin:tiny-lm is built by workbench: no shipped code
    assert trust.unapproved(r) == []


def test_trust_remote_code_is_asked_per_model_code(tmp_path):
    folder = model_folder(tmp_path / "m")
    r = remote_code_recipe(folder)
    pending = trust.unapproved(r)
    assert [(i.key, i.path) for i in pending] == [("model.path", folder)]
    assert "modeling_custom.py" in trust.review_text(pending) and "trust_remote_code" in pending[0].ask
    trust.approve(pending)
    assert trust.unapproved(r) == []
    (folder / "modeling_custom.py").write_text("import os\nos.system('echo hi')\n")  # edited: ask again
    assert len(trust.unapproved(r)) == 1
    trust.approve(trust.unapproved(r))
    (folder / "helpers.py").write_text("x = 1\n")  # a new file is new code too
    assert len(trust.unapproved(r)) == 1
    r.set("model.trust_remote_code", False)
    assert trust.unapproved(r) == []


def test_hub_models_are_approved_by_reference_and_run_previous_every_time():
    r = Recipe.load(RECIPES / "sft-tiny.toml")
    r.set("model.path", "someorg/custom-model")
    r.set("model.trust_remote_code", True)
    (item,) = trust.unapproved(r)
    assert item.ident == "model:hub:someorg/custom-model" and "hub" in trust.review_text([item])
    trust.approve([item])
    assert trust.unapproved(r) == []
    r.set("model.path", "run:previous")  # written by an earlier stage later: nothing to remember yet
    trust.approve(trust.unapproved(r))
    assert len(trust.unapproved(r)) == 1


def test_cli_needs_allow_code_for_trust_remote_code(tmp_path, runs_dir):
    folder = model_folder(tmp_path / "m")
    base = workbench_cmd("--runs-dir", str(runs_dir), "prepare", str(RECIPES / "sft-tiny.toml"),
                         "--set", f'model.path="{folder}"', "--set", "model.trust_remote_code=true",
                         "--set", f'data.path="{ASSETS / "format-sft.jsonl"}"')
    env = dict(os.environ)  # WORKBENCH_CACHE: this test's own (own_cache)
    proc = subprocess.run(base, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "trust_remote_code" in proc.stderr and "--allow-code" in proc.stderr and str(folder) in proc.stderr
    assert not any(runs_dir.iterdir())
    proc = subprocess.run(base + ["--allow-code"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (rd_path,) = runs_dir.iterdir()
    record = json.loads((rd_path / "consent.json").read_text())
    assert record["models"]["model.path"]["digest"] == trust.folder_digest(folder)


# -- sealing at launch, checking on resume -------------------------------------------------------------------
def test_prepare_seals_a_copy_of_the_approved_code(tmp_path, runs_dir):
    f = tmp_path / "r.py"
    f.write_text(REWARD)
    r = recipe_with(f)
    trust.approve(trust.unapproved(r))
    rd = supervisor.prepare(r, runs_dir)
    copy = rd.path / "code" / "r.py"
    assert copy.read_text() == REWARD
    frozen = Recipe.load(rd.recipe_path)
    assert frozen.get("rewards.funcs") == ["format", f"{copy}:short"], "the run imports the copy, not the source"
    record = json.loads((rd.path / "consent.json").read_text())
    assert record["files"]["code/r.py"]["sha256"] == trust.digest(f)
    f.write_text("import os\nos.system('rm -rf ~')\n")  # the source changes later: the run is unaffected
    trust.verify_run(rd.path)


def test_prepare_refuses_code_changed_since_its_approval(tmp_path, runs_dir):
    f = tmp_path / "r.py"
    f.write_text(REWARD)
    r = recipe_with(f)
    trust.approve(trust.unapproved(r))
    f.write_text(REWARD + "import os\n")
    with pytest.raises(BadInput) as e:
        supervisor.prepare(r, runs_dir)
    assert "not approved as it is now" in str(e.value) and not any(runs_dir.iterdir())


def resumable(rd) -> None:
    """The run failed after writing a complete checkpoint."""
    rd.write_status(state="failed", ended=1.0)
    ckpt = rd.checkpoints / "checkpoint-5"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text('{"global_step": 5}')


def test_resume_refuses_an_approved_copy_that_was_edited(tmp_path, runs_dir):
    f = tmp_path / "r.py"
    f.write_text(REWARD)
    r = recipe_with(f)
    trust.approve(trust.unapproved(r))
    rd = supervisor.prepare(r, runs_dir)
    resumable(rd)
    copy = rd.path / "code" / "r.py"
    copy.chmod(0o600)
    copy.write_text(REWARD + "import os\nos.system('touch pwned')\n")
    with pytest.raises(BadInput) as e:
        supervisor.resume(rd)
    assert "changed after it was approved" in str(e.value) and str(copy) in str(e.value)
    assert rd.read_status()["state"] == "failed", "nothing was started"


def test_resume_refuses_model_code_that_changed(tmp_path, runs_dir):
    folder = model_folder(tmp_path / "m")
    r = remote_code_recipe(folder)
    r.set("data.path", str(ASSETS / "format-sft.jsonl"))
    trust.approve(trust.unapproved(r))
    rd = supervisor.prepare(r, runs_dir)
    resumable(rd)
    (folder / "modeling_custom.py").write_text("import os\n")
    with pytest.raises(BadInput) as e:
        supervisor.resume(rd)
    assert "model's Python code changed" in str(e.value)
    assert rd.read_status()["state"] == "failed"


# -- run: references ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("recipe,key,ref", [
    ("sft-tiny", "model.path", "run:../x"), ("sft-tiny", "model.path", "run:a/b"), ("sft-tiny", "model.path", "run:.."),
    ("distill-tiny", "model.teacher", "run:../x"), ("ppo-tiny", "model.reward_model", "run:../x")])
def test_run_reference_must_name_a_run_inside_the_runs_dir(runs_dir, recipe, key, ref):
    (runs_dir.parent / "x" / "final").mkdir(parents=True)  # something there to reach: still refused
    r = Recipe.load(RECIPES / f"{recipe}.toml")
    r.set(key, ref)
    problems = [p for p in validate_recipe(r, runs_dir) if p.key == key]
    assert problems and "not a run id" in problems[0].message and "inside the runs directory" in problems[0].message


def test_pipeline_asks_up_front_for_model_code_an_earlier_stage_writes(tmp_path, runs_dir):
    folder = tmp_path / "pipe"
    folder.mkdir()
    for i, model in ((1, "builtin:tiny-lm"), (2, "run:previous")):
        r = Recipe.load(RECIPES / "sft-tiny.toml")
        r.set("model.path", model)
        r.set("model.trust_remote_code", i == 2)
        r.set("data.path", str(ASSETS / "format-sft.jsonl"))
        r.save(folder / f"{i}-sft.toml")
    proc = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "pipeline", str(folder)), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "--allow-code" in proc.stderr and "not there yet" in proc.stderr, proc.stderr
    assert not any(runs_dir.iterdir()), "no stage started"
