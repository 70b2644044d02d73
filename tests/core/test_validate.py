"""Recipe validation, end to end through `workbench validate`: every problem reported at once, exit code 2,
messages that name the file, the key and the line, never a traceback."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ASSETS, FIXTURES, RECIPES, workbench_cmd
from workbench.core.recipe import Recipe
from workbench.core.validate import validate_recipe

BROKEN = FIXTURES / "recipes"


def validate(path, runs_dir, *extra, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "validate", str(path), *extra),
                          capture_output=True, text=True, cwd=cwd, timeout=120, check=False)


def line_of(path: Path, needle: str) -> int:
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not in {path}")


def assert_bad_input(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "ok (stage" not in proc.stdout


# fixture -> (key shown, text of the recipe line the problem points at (None: not a recipe line),
#             phrases the message must contain)
CASES = {
    "unknown-section": ("[trian]", "[trian]", ["unknown section", "did you mean 'train'"]),
    "unknown-train-key": ("train.num_generation", "num_generation =",
                          ["unknown key 'num_generation'", "did you mean 'num_generations'"]),
    "wrong-type": ("train.learning_rate", 'learning_rate = "fast"', ["'fast'", "should be a number"]),
    "negative-lr": ("train.learning_rate", "learning_rate = -1e-4", ["must be > 0"]),
    "temperature-zero": ("train.temperature", "temperature = 0.0", ["must be > 0"]),
    "zero-stage-5": ("launch.zero_stage", "zero_stage = 5", ["maximum 3"]),
    "lora-r0": ("peft.r", "r = 0", ["minimum 1"]),
    "grpo-indivisible": ("train.per_device_train_batch_size", "per_device_train_batch_size = 8",
                         ["not divisible by num_generations (3)", "multiple of 3"]),
    "num-generations-1": ("train.num_generations", "num_generations = 1", [">= 2"]),
    "missing-dataset": ("data.path", "does-not-exist.jsonl", ["does-not-exist.jsonl", "not found",
                                                               str(FIXTURES / "data" / "does-not-exist.jsonl")]),
    "sft-data-for-grpo": ("data.path", "format-sft.jsonl", ["format-sft.jsonl has columns ['messages']",
                                                           "stage grpo needs {prompt}"]),
    "correctness-no-answer": ("rewards.funcs", "funcs =", ["'correctness'", "['answer']"]),
    "unknown-reward": ("rewards.funcs", "funcs =", ["unknown reward function 'corectness'",
                                                   "did you mean 'correctness'"]),
    "reward-missing-function": ("rewards.funcs", "funcs =", ["good.py", "no function 'no_such_function'",
                                                            "short_answer"]),
    "reward-no-kwargs": ("rewards.funcs", "funcs =", ["function 'reward'", "**kwargs"]),
    "reward-needs-column": ("rewards.funcs", "funcs =", ["'difficulty_bonus'", "['difficulty']"]),
    "model-no-weights": ("model.path", "no-weights", ["no-weights", "has no weights"]),
    "unknown-builtin-model": ("model.path", "builtin:tiny-lmm", ["unknown built-in model 'tiny-lmm'",
                                                                "did you mean 'tiny-lm'"]),
    "hub-model-offline": ("model.path", "no-such-org", ["'no-such-org/no-such-model-xyz'", "no network"]),
    "run-model-missing": ("model.path", "run:", ["run '20990101-000000-no-such-run' not found"]),
    "newer-format": ("run.format_version", "format_version = 99", ["format 99 is newer"]),
    # a problem inside the data file points at the data file's own line
    "broken-jsonl-line": ("data.path", None, ["broken-line.jsonl:3", "line 3 is not valid JSON"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_broken_recipe_is_reported_with_file_key_and_line(name, runs_dir, tmp_path):
    key, line_text, phrases = CASES[name]
    recipe = BROKEN / f"{name}.toml"
    # From another folder: relative paths in the recipe must be resolved beside it, not in the cwd.
    proc = validate(recipe, runs_dir, cwd=tmp_path)
    assert_bad_input(proc)
    err = proc.stderr
    assert key in err, err
    for phrase in phrases:
        assert phrase in err, f"{phrase!r} missing from:\n{err}"
    if line_text is not None:
        assert f"{recipe}:{line_of(recipe, line_text)}: {key}" in err, err
    assert f"1 problem in {recipe}" in err or f"problems in {recipe}" in err


def test_malformed_toml_names_the_line(runs_dir):
    recipe = BROKEN / "malformed.toml"
    proc = validate(recipe, runs_dir)
    assert_bad_input(proc)
    assert f"{recipe}:5:" in proc.stderr  # the unterminated string is on line 5
    assert "not valid TOML" in proc.stderr and "line 5" in proc.stderr


def test_all_problems_are_reported_at_once(runs_dir):
    recipe = BROKEN / "many-problems.toml"
    proc = validate(recipe, runs_dir)
    assert_bad_input(proc)
    err = proc.stderr
    expected = {
        "train.num_generation": ("num_generation =", "did you mean 'num_generations'"),
        "train.learning_rate": ('learning_rate = "fast"', "should be a number"),
        "train.temperature": ("temperature = 0.0", "must be > 0"),
        "peft.r": ("r = 0", "minimum 1"),
        "launch.zero_stage": ("zero_stage = 5", "maximum 3"),
        "model.path": ("builtin:tiny-lmm", "did you mean 'tiny-lm'"),
        "rewards.funcs": ("funcs =", "did you mean 'correctness'"),
    }
    for key, (line_text, phrase) in expected.items():
        assert f"{recipe}:{line_of(recipe, line_text)}: {key}" in err, f"{key} not reported:\n{err}"
        assert phrase in err
    m = re.search(r"(\d+) problems in ", err)
    assert m and int(m.group(1)) >= len(expected), err


def test_rewards_still_checked_when_the_dataset_is_missing(runs_dir, tmp_path):
    text = (BROKEN / "missing-dataset.toml").read_text().replace('"correctness"', '"corectness"')
    recipe = tmp_path / "r.toml"
    recipe.write_text(text)
    proc = validate(recipe, runs_dir)
    assert_bad_input(proc)
    assert "data.path" in proc.stderr and "not found" in proc.stderr
    assert "unknown reward function 'corectness'" in proc.stderr
    assert "2 problems" in proc.stderr


def test_reward_file_with_syntax_error(runs_dir, tmp_path):
    # written here, not kept as a fixture: a file that does not parse would trip linters and compileall
    (tmp_path / "rewards").mkdir()
    (tmp_path / "rewards" / "broken.py").write_text("def reward(completions, **kwargs)\n    return [0.0]\n")
    recipe = tmp_path / "r.toml"
    recipe.write_text((BROKEN / "valid-grpo.toml").read_text()
                      .replace("../../../assets/data/", f"{ASSETS}/")
                      .replace('funcs = ["format", "correctness"]', 'funcs = ["format", "rewards/broken.py:reward"]'))
    proc = validate(recipe, runs_dir, cwd=runs_dir)
    assert_bad_input(proc)
    assert f"{recipe}:{line_of(recipe, 'funcs =')}: rewards.funcs" in proc.stderr
    assert str(tmp_path / "rewards" / "broken.py") in proc.stderr and "syntax error at line 1" in proc.stderr


def _grpo_recipe(tmp_path: Path, data: Path) -> Path:
    p = tmp_path / "recipe.toml"
    p.write_text(f'[run]\nstage = "grpo"\n\n[model]\npath = "builtin:tiny-lm"\n\n[data]\npath = "{data.name}"\n\n'
                 '[rewards]\nfuncs = ["format"]\n\n[train]\nnum_generations = 4\nper_device_train_batch_size = 8\n')
    return p


def test_non_utf8_dataset(runs_dir, tmp_path):
    data = tmp_path / "latin1.jsonl"
    data.write_bytes('{"prompt": "caf\u00e9 au lait?", "answer": "1"}\n'.encode("latin-1"))
    proc = validate(_grpo_recipe(tmp_path, data), runs_dir)
    assert_bad_input(proc)
    assert f"{data}: data.path" in proc.stderr and "not UTF-8" in proc.stderr


@pytest.mark.parametrize("content, phrase", [(b"", "dataset file is empty"), (b"\n  \n\n", "dataset has no rows")])
def test_empty_dataset(runs_dir, tmp_path, content, phrase):
    data = tmp_path / "empty.jsonl"
    data.write_bytes(content)
    proc = validate(_grpo_recipe(tmp_path, data), runs_dir)
    assert_bad_input(proc)
    assert f"{data}: data.path" in proc.stderr and phrase in proc.stderr


def test_json_list_line_is_named(runs_dir, tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text('{"prompt": "a", "answer": "1"}\n[1, 2]\n')
    proc = validate(_grpo_recipe(tmp_path, data), runs_dir)
    assert_bad_input(proc)
    assert f"{data}:2:" in proc.stderr and "line 2" in proc.stderr


def test_recipe_file_problems(runs_dir, tmp_path):
    proc = validate(tmp_path / "nope.toml", runs_dir)
    assert_bad_input(proc)
    assert "nope.toml" in proc.stderr and "not found" in proc.stderr
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b'[run]\nname = "caf\xe9"\n')
    proc = validate(bad, runs_dir)
    assert_bad_input(proc)
    assert f"{bad}:2:" in proc.stderr and "not UTF-8" in proc.stderr
    proc = validate(tmp_path, runs_dir)
    assert_bad_input(proc)
    assert "folder" in proc.stderr


def test_required_keys_are_all_reported(runs_dir, tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('[run]\nname = "x"\n')
    proc = validate(recipe, runs_dir)
    assert_bad_input(proc)
    for key in ("run.stage", "model.path", "data.path"):
        assert f"{key} is required" in proc.stderr


@pytest.mark.parametrize("recipe", [RECIPES / "grpo-tiny.toml", RECIPES / "sft-tiny.toml",
                                    BROKEN / "valid-grpo.toml", BROKEN / "reward-user-ok.toml"])
def test_valid_recipes_pass(recipe, runs_dir, tmp_path):
    proc = validate(recipe, runs_dir, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "ok (stage" in proc.stdout
    assert proc.stderr == ""


def test_validate_warm_twice(runs_dir):
    for _ in range(2):
        proc = validate(RECIPES / "grpo-tiny.toml", runs_dir)
        assert proc.returncode == 0, proc.stderr
        assert "ok (stage grpo" in proc.stdout


def test_run_model_reference_to_existing_run(runs_dir, tmp_path):
    """run:ID of a run without a final model is a problem; with one it is fine."""
    from workbench.core.rundir import RunDir

    rd = RunDir.create(runs_dir, "base")
    rd.write_status(state="running")
    text = (BROKEN / "valid-grpo.toml").read_text().replace("builtin:tiny-lm", f"run:{rd.id}")
    recipe = Recipe.parse(text, BROKEN / "valid-grpo.toml")
    problems = validate_recipe(recipe, runs_dir)
    assert [p.key for p in problems] == ["model.path"]
    assert "no final model yet" in problems[0].message and "running" in problems[0].message
    (rd.final_model).mkdir()
    assert validate_recipe(recipe, runs_dir) == []


def test_shipped_recipes_unchanged_by_validation(runs_dir, tmp_path):
    """Validation never writes to the recipe."""
    copy = tmp_path / "grpo.toml"
    shutil.copy(RECIPES / "grpo-tiny.toml", copy)
    copy.write_text(copy.read_text().replace("../assets/data/", f"{ASSETS}/"))
    before = copy.read_bytes()
    assert validate(copy, runs_dir).returncode == 0
    assert copy.read_bytes() == before


# Wrong data or a missing model for a stage: caught before launch, against the shipped recipes.
STAGE_MISMATCHES = [
    ("dpo-tiny.toml", ["data.path=\"../assets/data/format-sft.jsonl\""], "data.path",
     ["stage dpo needs {prompt, chosen, rejected} or {chosen, rejected}"]),
    ("reward-tiny.toml", ["data.path=\"../assets/data/text.jsonl\""], "data.path", ["stage reward needs"]),
    ("kto-tiny.toml", ["data.path=\"../assets/data/prefs.jsonl\""], "data.path",
     ["{prompt, completion, label}"]),
    ("distill-tiny.toml", ["data.path=\"../assets/data/format-sft.jsonl\""], "data.path",
     ["stage distill needs {prompt}"]),
    ("pretrain-tiny.toml", ["data.path=\"../assets/data/prefs.jsonl\""], "data.path", ["stage pretrain needs {text}"]),
    ("distill-tiny.toml", ["model.teacher=\"\""], "model.teacher", ["stage distill needs model.teacher",
                                                                    "builtin:tiny-teacher"]),
    ("ppo-tiny.toml", ["model.reward_model=\"\""], "model.reward_model", ["stage ppo needs model.reward_model"]),
    ("ppo-tiny.toml", ["model.reward_model=\"run:no-such-run\""], "model.reward_model",
     ["run 'no-such-run' not found"]),
    ("best-of-k-tiny.toml", ["train.max_steps=3"], "train", ["best-of-k trains nothing"]),
]


@pytest.mark.parametrize("recipe,sets,key,phrases", STAGE_MISMATCHES)
def test_stage_data_and_model_mismatches(runs_dir, recipe, sets, key, phrases):
    extra = [a for s in sets for a in ("--set", s)]
    proc = validate(RECIPES / recipe, runs_dir, *extra)
    assert_bad_input(proc)
    assert key in proc.stderr
    for phrase in phrases:
        assert phrase in proc.stderr, (phrase, proc.stderr)
