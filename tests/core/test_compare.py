"""Run comparison as data (workbench.core.compare) and `workbench compare`: shared metrics across stages, final
values and evals, the recipe diff, the three x axes, big files, and the CLI's bad input."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tui.conftest import make_run
from workbench import cli
from workbench.core import compare
from workbench.core.rundir import RunDir

FIXED = 1_767_225_600.0


def load(*paths: Path) -> list[compare.RunMetrics]:
    return [compare.load_run(RunDir(p)) for p in paths]


def set_lr(run: Path, lr: str) -> None:
    recipe = run / "recipe.toml"
    recipe.write_text(recipe.read_text().replace("learning_rate = 1e-3", f"learning_rate = {lr}"))


def write_rows(run: Path, rows: list[dict]) -> None:
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_runs_of_different_stages_compare_on_the_metrics_they_share(runs_dir):
    grpo = make_run(runs_dir, "20260101-000000-grpo-a", steps=6, now=FIXED)
    sft = make_run(runs_dir, "20260102-000000-sft-b", stage="sft", steps=4, now=FIXED)
    runs = load(grpo, sft)
    assert compare.shared_keys(runs) == ["loss", "grad_norm", "learning_rate"]
    assert compare.default_metrics(runs) == ["loss"]  # the shared headline metric; reward/kl are grpo's alone
    grpo_only = load(grpo, make_run(runs_dir, "20260103-000000-grpo-c", steps=3, now=FIXED))
    assert compare.default_metrics(grpo_only) == ["reward", "loss", "kl"]


def test_eval_keys_logged_by_every_run_are_charted_by_default(runs_dir):
    a = make_run(runs_dir, "20260101-000000-a", stage="sft", steps=2, now=FIXED)
    b = make_run(runs_dir, "20260102-000000-b", stage="sft", steps=2, now=FIXED)
    for run in (a, b):
        with open(run / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"step": 2, "time": FIXED, "eval/accuracy": 0.5, "eval_loss": 0.7}) + "\n")
    assert compare.default_metrics(load(a, b)) == ["loss", "mean_token_accuracy", "eval/accuracy", "eval_loss"]


def test_final_table_has_step_duration_shared_finals_and_evals(runs_dir):
    a = make_run(runs_dir, "20260101-000000-grpo-a", steps=10, now=FIXED)
    b = make_run(runs_dir, "20260102-000000-grpo-b", steps=4, now=FIXED)
    (b / "evals").mkdir()
    (b / "evals" / "arith.json").write_text(json.dumps(  # the shape core/evals.py writes
        {"name": "arith", "summary": {"n_prompts": 8, "accuracy": 0.25, "pass@k": 0.5, "curve": [{"k": 1}]}}))
    table = dict(compare.final_table(load(a, b)))
    assert table["step"] == ["10", "4"]
    assert table["duration"] == ["0:48", "0:48"]  # train_begin at now-50 .. train_end at now-2
    assert table["reward"] == ["1", "0.4"] and table["loss"] == ["0.1", "0.25"]
    assert table["evals/arith/accuracy"] == [compare.MISSING, "0.25"]
    assert table["evals/arith/pass@k"] == [compare.MISSING, "0.5"]
    assert not any("n_prompts" in k for k in table)  # counts, not results


def test_evals_are_read_defensively(tmp_path):
    assert compare.read_evals(tmp_path / "absent") == {}
    folder = tmp_path / "evals"
    folder.mkdir()
    (folder / "torn.json").write_text('{"accuracy": 0.')
    (folder / "list.json").write_text("[1, 2]")
    (folder / "binary.json").write_bytes(b"\xff\xfe")
    (folder / "notes.txt").write_text('{"accuracy": 1}')
    (folder / "flat.json").write_text(json.dumps({"accuracy": 0.75, "model": "x", "ok": True, "nan": None}))
    (folder / "nested.json").write_text(json.dumps({"metrics": {"gsm8k": {"acc": 0.1}, "mmlu": 0.2}}))
    assert compare.read_evals(folder) == {"flat/accuracy": 0.75, "nested/gsm8k/acc": 0.1, "nested/mmlu": 0.2}


def test_recipe_diff_keeps_only_keys_that_differ_and_marks_missing_ones(runs_dir):
    a = make_run(runs_dir, "20260101-000000-a", steps=2, now=FIXED)
    b = make_run(runs_dir, "20260102-000000-b", steps=2, now=FIXED)
    assert compare.recipe_diff(load(a, b)) == []
    set_lr(b, "5e-5")
    with open(b / "recipe.toml", "a") as f:
        f.write("warmup_steps = 3\n")  # lands in [launch], the file's last table
    diff = dict(compare.recipe_diff(load(a, b)))
    assert diff == {"train.learning_rate": ["0.001", "5e-05"], "launch.warmup_steps": [compare.MISSING, "3"]}
    (a / "recipe.toml").unlink()
    runs = load(a, b)
    assert runs[0].recipe_note == "no recipe.toml"
    assert all(cells[0] == compare.MISSING for _, cells in compare.recipe_diff(runs))


def test_time_axis_is_seconds_since_the_first_row_and_tokens_fall_back_to_step(runs_dir):
    a = make_run(runs_dir, "20260101-000000-a", steps=3, now=FIXED)
    write_rows(a, [{"event": "train_begin", "step": 0, "time": 100.0, "max_steps": 3}]
               + [{"step": s, "time": 100.0 + 2 * s, "loss": 1.0 / s, "num_tokens": 64.0 * s} for s in (1, 2, 3)])
    b = make_run(runs_dir, "20260102-000000-b", steps=3, now=FIXED)
    ra, rb = load(a, b)
    assert ra.history("time").points("loss")[0] == [2.0, 4.0, 6.0]
    assert ra.tokens_logged and ra.history("tokens").points("loss")[0] == [64.0, 128.0, 192.0]
    assert not rb.tokens_logged and rb.history("tokens") is rb.steps
    assert "num_tokens" not in compare.shared_keys([ra, ra])


def test_a_resumed_run_forgets_the_superseded_attempt_on_every_axis(runs_dir):
    run = make_run(runs_dir, "20260101-000000-r", steps=1, now=FIXED)
    rows = [{"step": s, "time": 10.0 + s, "loss": 1.0, "num_tokens": 10.0 * s} for s in (1, 2)]
    rows += [{"event": "checkpoint", "step": 2, "time": 12.5}]
    rows += [{"step": s, "time": 10.0 + s, "loss": 9.0, "num_tokens": 10.0 * s} for s in (3, 4)]  # lost attempt
    rows += [{"event": "resume", "step": 2, "time": 30.0}]
    rows += [{"step": 3, "time": 31.0, "loss": 0.5, "num_tokens": 30.0}]
    write_rows(run, rows)
    (r,) = load(run)
    for axis in compare.AXES:
        assert 9.0 not in r.history(axis).points("loss")[1], axis
    assert r.history("time").points("loss") == ([0.0, 1.0, 20.0], [1.0, 1.0, 0.5])
    assert r.final["loss"] == 0.5


def test_a_big_metrics_file_is_sampled_then_read_incrementally(runs_dir, monkeypatch):
    run = make_run(runs_dir, "20260101-000000-big", steps=1, now=FIXED)
    write_rows(run, [{"step": s, "time": float(s), "loss": 1.0 / s} for s in range(1, 3001)])
    monkeypatch.setattr(compare, "SAMPLE_BYTES", 10_000)
    (r,) = load(run)
    assert r.sampled and r.steps.rows < 3000  # sampled rows, not all of them
    assert r.steps.step == 3000 and r.final["loss"] == pytest.approx(1 / 3000)  # the tail is read whole
    with open(run / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 3001, "time": 3001.0, "loss": 0.0}) + "\n")
    assert r.poll() and r.steps.step == 3001 and r.final["loss"] == 0.0


def test_short_labels_are_distinct_and_short():
    assert compare.short_labels(["20260101-000000-grpo-a", "20260102-000000-grpo-b"]) == ["grpo-a", "grpo-b"]
    same_name = compare.short_labels(["20260101-000000-grpo-tiny", "20260101-010000-grpo-tiny"])
    assert same_name == ["000000-grpo-tiny", "010000-grpo-tiny"]
    long = compare.short_labels(["20260101-000000-grpo-arith-lr1e-4-beta0.04",
                                 "20260101-000000-grpo-arith-lr5e-5-beta0.04"])
    assert long == ["lr1e-4", "lr5e-5"]
    many = compare.short_labels(["x" * 40 + "a", "x" * 40 + "b"], limit=12)
    assert len(set(many)) == 2 and all(len(label) <= 12 for label in many)


def test_cli_prints_the_table_and_the_recipe_diff(runs_dir, capsys):
    make_run(runs_dir, "20260101-000000-grpo-a", steps=10, now=FIXED)
    b = make_run(runs_dir, "20260102-000000-grpo-b", steps=8, now=FIXED)
    set_lr(b, "5e-5")
    assert cli.main(["--runs-dir", str(runs_dir), "compare", "grpo-a", "grpo-b"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[1].split() == ["grpo-a", "20260101-000000-grpo-a", "grpo", "completed"]
    assert next(line for line in lines if line.startswith("final values")).split()[2:] == ["grpo-a", "grpo-b"]
    assert any(line.split() == ["reward", "1", "0.8"] for line in lines)
    assert any(line.split() == ["train.learning_rate", "0.001", "5e-05"] for line in lines)
    assert not any(line.startswith("train.max_steps") for line in lines)  # same in both: not in the diff


@pytest.mark.parametrize("refs, message", [
    ([], "two or more runs, got 0"), (["grpo-a"], "two or more runs, got 1"),
    (["grpo-a", "nope"], "no run 'nope'"), (["grpo-a", "20260101-000000-grpo-a"], "the same run twice")])
def test_cli_refuses_fewer_than_two_runs_and_unknown_runs(runs_dir, capsys, refs, message):
    make_run(runs_dir, "20260101-000000-grpo-a", steps=2, now=FIXED)
    make_run(runs_dir, "20260102-000000-grpo-b", steps=2, now=FIXED)
    assert cli.main(["--runs-dir", str(runs_dir), "compare", *refs]) == 2
    assert message in capsys.readouterr().err


def test_compare_loads_no_training_stack_and_no_textual(runs_dir):
    make_run(runs_dir, "20260101-000000-a", steps=2, now=FIXED)
    make_run(runs_dir, "20260102-000000-b", steps=2, now=FIXED)
    code = ("import sys, io, contextlib, workbench.cli as cli\n"
            f"with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    rc = cli.main(['--runs-dir', {str(runs_dir)!r}, 'compare', 'a', 'b'])\n"
            "heavy = ('torch', 'transformers', 'trl', 'peft', 'datasets', 'deepspeed', 'accelerate', 'textual')\n"
            "print(rc, [m for m in heavy if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0 []"
