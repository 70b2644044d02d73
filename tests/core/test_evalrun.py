"""What a `workbench eval` TARGET names (workbench/core/evalrun.py), where results go, and the --data checks;
all without the training stack."""
from __future__ import annotations

import json

import pytest

from workbench.core import evalrun
from workbench.core.problems import BadInput
from workbench.core.rundir import RunDir


def model_folder(path):
    path.mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (path / name).write_text("{}")
    return path


def make_run(runs_dir, run_id="20260101-000000-sft-tiny", final=True, checkpoints=(), base="builtin:tiny-lm",
             stage="sft"):
    rd = RunDir(runs_dir / run_id)
    rd.path.mkdir(parents=True)
    rd.status_path.write_text(json.dumps({"state": "completed" if final else "running", "stage": stage}))
    rd.recipe_path.write_text(f'[run]\nstage = "sft"\n[model]\npath = "{base}"\n[data]\npath = "x.jsonl"\n'
                              'system_prompt = "Respond in the format"\n')
    if final:
        model_folder(rd.final_model)
    for n in checkpoints:
        (rd.checkpoints / f"checkpoint-{n}").mkdir(parents=True)
        (rd.checkpoints / f"checkpoint-{n}" / "config.json").write_text("{}")
    return rd


def test_a_run_id_is_its_final_model_with_the_recipes_system_prompt(runs_dir):
    rd = make_run(runs_dir)
    for ref in (rd.id, "run:" + rd.id, "last", rd.id[:12], str(rd.path), str(rd.final_model)):
        t = evalrun.resolve_target(ref, runs_dir)
        assert (t.label, t.short, t.model, t.run.id) == (f"{rd.id}/final", "final", str(rd.final_model), rd.id), ref
        assert t.system_prompt == "Respond in the format"
    assert evalrun.out_dir(t, "elsewhere") == rd.path / "evals", "a run's evals live in its directory"


def test_a_checkpoint_by_name_or_path(runs_dir):
    rd = make_run(runs_dir, checkpoints=(5, 10))
    ckpt = rd.checkpoints / "checkpoint-5"
    for ref in (f"{rd.id}/checkpoint-5", f"{rd.id}/checkpoints/checkpoint-5", str(ckpt)):
        t = evalrun.resolve_target(ref, runs_dir)
        assert (t.label, t.short, t.model) == (f"{rd.id}/checkpoint-5", "checkpoint-5", str(ckpt)), ref
        assert t.tokenizer == str(rd.final_model), "a checkpoint without tokenizer files takes the run's"


def test_a_checkpoint_of_an_unfinished_run_takes_the_base_models_tokenizer(runs_dir):
    rd = make_run(runs_dir, final=False, checkpoints=(5,))
    assert evalrun.resolve_target(f"{rd.id}/checkpoint-5", runs_dir).tokenizer == "builtin:tiny-lm"
    with pytest.raises(BadInput) as e:
        evalrun.resolve_target(rd.id, runs_dir)
    p = e.value.problems[0]
    assert f"run {rd.id} has no final model yet (state: " in p.message
    assert "checkpoint-5" in p.hint and f"{rd.id}/checkpoint-N" in p.hint
    with pytest.raises(BadInput, match="no checkpoint checkpoint-7"):
        evalrun.resolve_target(f"{rd.id}/checkpoint-7", runs_dir)


def test_builtins_folders_and_hub_ids(runs_dir, tmp_path, monkeypatch):
    t = evalrun.resolve_target("builtin:tiny-lm", runs_dir)
    assert (t.label, t.short, t.model, t.run) == ("builtin:tiny-lm", "tiny-lm", "builtin:tiny-lm", None)
    with pytest.raises(BadInput, match="unknown built-in model 'tiny-llm'"):
        evalrun.resolve_target("builtin:tiny-llm", runs_dir)
    folder = model_folder(tmp_path / "my-model")
    t = evalrun.resolve_target(str(folder), runs_dir)
    assert (t.model, t.short, t.run) == (str(folder), "my-model", None)
    assert evalrun.out_dir(t, None).name == "evals"
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInput, match="has no config.json"):
        evalrun.resolve_target(str(tmp_path / "empty"), runs_dir)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(BadInput, match="not in the Hugging Face cache"):
        evalrun.resolve_target("someone/some-model", runs_dir)
    snap = tmp_path / "hub" / "models--someone--some-model" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    t = evalrun.resolve_target("someone/some-model", runs_dir)
    assert (t.model, t.short) == ("someone/some-model", "someone--some-model")


def test_data_needs_prompts(tmp_path):
    good = tmp_path / "held.jsonl"
    good.write_text('{"prompt": "What is 1 + 1?", "answer": "2"}\n')
    assert evalrun.check_data(str(good)) == good and evalrun.has_answers(good)
    bad = tmp_path / "text.jsonl"
    bad.write_text('{"text": "words"}\n')
    with pytest.raises(BadInput, match="has no prompts to generate from"):
        evalrun.check_data(str(bad))
    with pytest.raises(BadInput, match="not found"):
        evalrun.check_data(str(tmp_path / "missing.jsonl"))


def test_cli_eval_bad_input_exits_2(runs_dir, tmp_path):
    from workbench.cli import main

    assert main(["--runs-dir", str(runs_dir), "eval", "nope", "--data", str(tmp_path / "x.jsonl")]) == 2
    good = tmp_path / "held.jsonl"
    good.write_text('{"prompt": "What is 1 + 1?", "answer": "2"}\n')
    assert main(["--runs-dir", str(runs_dir), "eval", "builtin:tiny-lm", "--data", str(good), "--k", "0"]) == 2


def test_runs_that_train_no_generating_model_are_refused(runs_dir):
    rm = make_run(runs_dir, "20260101-000000-reward-tiny", stage="reward")
    with pytest.raises(BadInput, match="scores and does not generate"):
        evalrun.resolve_target(rm.id, runs_dir)
    bok = make_run(runs_dir, "20260101-000000-best-of-k-tiny", stage="best-of-k", final=False)
    with pytest.raises(BadInput, match="trains no model"):
        evalrun.resolve_target(bok.id, runs_dir)
