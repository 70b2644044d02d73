"""The [eval] section before launch (workbench/core/rules_eval.py and rules.eval_needs_a_dataset): every problem
at the key it is about, with what to do; the shipped recipes with an [eval] section validate clean."""
from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import ASSETS, RECIPES, workbench_cmd
from workbench.core.recipe import Recipe
from workbench.core.rules_eval import holdout_count
from workbench.core.validate import validate_recipe

HELDOUT = str(ASSETS / "arith-heldout.jsonl")
EVAL = {"eval.data": HELDOUT, "eval.k": 2, "eval.max_prompts": 4}


def recipe(stage: str, sets: dict) -> Recipe:
    r = Recipe.load(RECIPES / f"{stage}-tiny.toml")
    for key, value in sets.items():
        r.set(key, value)
    return r


def problems(stage: str, sets: dict, tmp_path) -> list:
    return validate_recipe(recipe(stage, sets), tmp_path / "runs")


def rows_file(tmp_path, rows, name="rows.jsonl"):
    f = tmp_path / name
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(f)


CASES = [  # (stage, sets, key, phrase, severity)
    ("sft", {"eval.dat": HELDOUT}, "eval.dat", "did you mean 'data'", "error"),
    ("sft", {**EVAL, "eval.k": 0}, "eval.k", "below the minimum 1", "error"),
    ("sft", {**EVAL, "eval.every_steps": "often"}, "eval.every_steps", "should be an integer", "error"),
    ("best-of-k", EVAL, "eval", "stage best-of-k trains nothing", "error"),
    ("sft", {"eval.data": "no-such.jsonl"}, "eval.data", "eval data file 'no-such.jsonl' not found", "error"),
    ("grpo", {"eval.data": "@text"}, "eval.data", "has no prompts to generate from", "error"),
    ("grpo", {"eval.data": "@no-answers"}, "eval.data", "no 'answer' column", "warning"),
    ("sft", {"train.eval_strategy": "steps"}, "train.eval_strategy", "without an [eval] section", "error"),
    ("grpo", {**EVAL, "train.eval_strategy": "steps"}, "train.eval_strategy",
     "the workbench passes no eval dataset to stage grpo", "error"),
    ("sft", {**EVAL, "train.eval_strategy": "steps"}, "eval.data", "needs [eval] data in stage sft's format",
     "error"),
    ("pretrain", {"eval.max_prompts": 8}, "eval", "have no prompts to generate from", "error"),
    ("grpo", {"eval.max_prompts": 8, "data.path": "@three-rows"}, "eval", "too few to hold out", "error"),
    ("sft", {**EVAL, "eval.temperature": 0.0}, "eval.temperature", "pass@k = maj@k = accuracy", "warning"),
    ("sft", {**EVAL, "eval.every_steps": 100}, "eval.every_steps", "beyond max_steps 40", "warning"),
    ("sft", {**EVAL, "launch.backend": "deepspeed", "launch.zero_stage": 3}, "eval", "skipped under ZeRO-3",
     "warning"),
]


@pytest.mark.parametrize("stage, sets, key, phrase, severity", CASES, ids=[f"{c[0]}-{c[2]}-{i}" for i, c in
                                                                          enumerate(CASES)])
def test_eval_problem(stage, sets, key, phrase, severity, tmp_path):
    files = {"@text": [{"text": "plain words"}] * 5, "@no-answers": [{"prompt": "What is 1 + 1?"}] * 5,
             "@three-rows": [{"prompt": "What is 1 + 1?", "answer": "2"}] * 3}
    sets = {k: rows_file(tmp_path, files[v], v[1:] + ".jsonl") if v in files else v for k, v in sets.items()}
    found = problems(stage, sets, tmp_path)
    shown = "\n".join(p.format() for p in found)
    hits = [p for p in found if p.key == key and phrase in f"{p.message} {p.hint}" and p.severity == severity]
    assert hits, f"no {severity} at {key} saying {phrase!r}:\n{shown}"
    assert all(p.hint for p in hits), shown


@pytest.mark.parametrize("stage, sets", [
    ("sft", EVAL),  # prompts + answers: the generation eval only
    ("sft", {"eval.max_prompts": 8, "train.eval_strategy": "steps", "train.eval_steps": 20}),  # held out of [data]
    ("sft", {"eval.data": str(ASSETS / "format-sft.jsonl"), "train.eval_strategy": "steps"}),  # the sft format
    ("dpo", {"eval.data": str(ASSETS / "prefs.jsonl"), "train.eval_strategy": "steps"}),
    ("pretrain", {"eval.max_prompts": 8, "train.eval_strategy": "steps"}),  # text: trl's eval loss only
    ("pretrain", EVAL),
    ("grpo", {"eval.max_prompts": 8}),
    ("ppo", EVAL),
    ("kto", {**EVAL, "train.eval_strategy": "no"}),
])
def test_valid_eval_sections(stage, sets, tmp_path):
    found = problems(stage, sets, tmp_path)
    assert found == [], "\n".join(p.format() for p in found)


def test_holdout_is_at_most_a_fifth():
    assert holdout_count(160, 32) == 32 and holdout_count(160, 0) == 32 and holdout_count(20, 32) == 4
    assert holdout_count(4, 8) == 0


def test_cli_validate_shows_eval_problems_on_one_screen(tmp_path):
    r = recipe("sft", {"train.eval_strategy": "steps", "eval.data": HELDOUT, "eval.k": 0})
    r.save(tmp_path / "r.toml")
    proc = subprocess.run(workbench_cmd("--runs-dir", str(tmp_path / "runs"), "validate", str(tmp_path / "r.toml")),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "eval.k: 0 is below the minimum 1" in proc.stderr
    assert "eval.data: trl's evaluation (eval_strategy = \"steps\") needs [eval] data in stage sft's format" \
        in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) < 25


def test_a_reward_model_gets_trls_eval_only(tmp_path):
    found = problems("reward", EVAL, tmp_path)
    assert any(p.key == "eval.data" and "trains a scorer, which generates nothing" in p.message for p in found)
    found = problems("reward", {"eval.max_prompts": 8}, tmp_path)
    assert [(p.key, p.severity) for p in found] == [("eval", "warning")] and "eval_strategy" in found[0].hint
    assert problems("reward", {"eval.max_prompts": 8, "train.eval_strategy": "steps"}, tmp_path) == []
