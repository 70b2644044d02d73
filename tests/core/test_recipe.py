"""Recipe round trip (comments and key order kept, atomic save) and --set overrides."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys

import pytest

from tests.conftest import RECIPES, workbench_cmd
from workbench.core.problems import BadInput
from workbench.core.recipe import Recipe, key_lines

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@pytest.fixture
def commented(tmp_path):
    p = tmp_path / "grpo.toml"
    shutil.copy(RECIPES / "grpo-tiny.toml", p)
    return p


def test_save_keeps_comments_and_key_order(commented):
    original = commented.read_text()
    r = Recipe.load(commented)
    r.set("train.beta", 0.1)
    r.set("run.name", "renamed")
    r.save()
    saved = commented.read_text()
    old_lines, new_lines = original.splitlines(), saved.splitlines()
    assert len(old_lines) == len(new_lines)
    changed = [(a, b) for a, b in zip(old_lines, new_lines) if a != b]
    assert len(changed) == 2, changed
    (_, new_name), (_, new_beta) = changed
    assert new_name == 'name = "renamed"'
    assert new_beta.startswith("beta = 0.1 ") and new_beta.endswith("# KL coefficient (> 0 loads a reference model "
                                                                      "and logs kl)")
    assert list(key_lines(saved)) == list(key_lines(original))  # same keys, same order
    again = Recipe.load(commented)
    assert again.get("train.beta") == 0.1 and again.get("run.name") == "renamed"


def test_new_keys_and_sections_land_in_their_tables(commented):
    r = Recipe.load(commented)
    r.set("train.gradient_accumulation_steps", 2)
    r.set("launch.zero_stage", 0)
    r.set("model.dtype", "float32")
    r.save()
    text = commented.read_text()
    data = tomllib.loads(text)
    assert data["train"]["gradient_accumulation_steps"] == 2
    assert data["launch"]["zero_stage"] == 0 and data["model"]["dtype"] == "float32"
    # every original comment survives
    for line in (RECIPES / "grpo-tiny.toml").read_text().splitlines():
        if "#" in line:
            assert line.split("#", 1)[1] in text
    # the new [train] key sits inside [train], before [launch]
    lines = key_lines(text)
    assert lines["train"] < lines["train.gradient_accumulation_steps"] < lines["launch"]


def test_unset_removes_key(commented):
    r = Recipe.load(commented)
    r.unset("train.beta")
    r.save()
    assert "beta" not in tomllib.loads(commented.read_text())["train"]
    assert "# completions per prompt" in commented.read_text()


def test_save_is_atomic_when_replace_fails(commented, monkeypatch):
    before = commented.read_bytes()
    r = Recipe.load(commented)
    r.set("train.beta", 0.5)

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        r.save()
    monkeypatch.undo()
    assert commented.read_bytes() == before
    assert sorted(p.name for p in commented.parent.iterdir()) == [commented.name]  # no temp file left


def test_save_keeps_file_mode(commented):
    commented.chmod(0o600)
    r = Recipe.load(commented)
    r.set("train.beta", 0.2)
    r.save()
    assert stat.S_IMODE(commented.stat().st_mode) == 0o600


def test_save_to_new_path(commented, tmp_path):
    r = Recipe.load(commented)
    out = tmp_path / "copy.toml"
    assert r.save(out) == out.resolve()
    assert out.read_text() == commented.read_text()
    with pytest.raises(ValueError):
        Recipe.parse("[run]\n").save()


def test_overrides_parse_toml_values(commented):
    r = Recipe.load(commented)
    r.apply_overrides(["train.beta=0.1", "train.report_to=none", "train.bf16=false", "train.max_steps = 7",
                       'data.system_prompt="Be brief, please"', "rewards.weights=[2.0, 0.5]",
                       "peft.method=lora"])
    assert r.get("train.beta") == 0.1
    assert r.get("train.report_to") == "none"  # not TOML: taken as a string
    assert r.get("train.bf16") is False
    assert r.get("train.max_steps") == 7
    assert r.get("data.system_prompt") == "Be brief, please"
    assert r.get("rewards.weights") == [2.0, 0.5]
    assert r.get("peft.method") == "lora"
    # and they are in the text that a run directory freezes
    assert tomllib.loads(r.dumps())["train"]["beta"] == 0.1


@pytest.mark.parametrize("bad", ["beta=0.1", "train.beta", "train.=1", "run.stage.x=1", "rewards.funcs.a=1"])
def test_bad_override_is_bad_input(commented, bad):
    r = Recipe.load(commented)
    with pytest.raises(BadInput) as e:
        r.apply_overrides(["train.beta=0.3", bad])
    assert any(p.file == "--set" and p.key == bad for p in e.value.problems)


def validate_with(runs_dir, *sets: str) -> subprocess.CompletedProcess:
    args = [a for s in sets for a in ("--set", s)]
    return subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "validate", str(RECIPES / "grpo-tiny.toml"),
                                        *args), capture_output=True, text=True, timeout=60, check=False)


def test_cli_set_override(runs_dir):
    ok = validate_with(runs_dir, "train.beta=0.1")
    assert ok.returncode == 0, ok.stderr
    bad = validate_with(runs_dir, "train.beta=0.1", "train.temperature=0")
    assert bad.returncode == 2
    assert "--set train.temperature" in bad.stderr and "must be > 0" in bad.stderr


@pytest.mark.parametrize("bad", ["beta=0.1", "train.beta", "run.stage.x=1"])
def test_cli_bad_set_syntax_exits_2(runs_dir, bad):
    proc = validate_with(runs_dir, bad)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"--set {bad}" in proc.stderr


def test_line_of_finds_keys_and_sections():
    text = '# c\n[run]\nstage = "grpo"\n\n[ train ]  # t\n"quoted" = 1\nbeta=0.1\n'
    r = Recipe.parse(text)
    assert r.line_of("run.stage") == 3
    assert r.line_of("train") == 5
    assert r.line_of("train.quoted") == 6
    assert r.line_of("train.beta") == 7
