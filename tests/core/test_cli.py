"""The light CLI commands on hand-made run directories, and the import boundary (no torch & co. in the CLI)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, workbench_cmd
from workbench.core.rundir import RunDir, hostname


def wb(*args, cwd=None, env=None) -> subprocess.CompletedProcess:
    proc = subprocess.run(workbench_cmd(*args), capture_output=True, text=True, timeout=60, cwd=cwd,
                          env={**os.environ, **(env or {})}, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def finished_run(runs_dir, name="grpo-done", state="completed", stage="grpo", **extra) -> RunDir:
    rd = RunDir.create(runs_dir, name)
    now = time.time()
    rd.launch_path.write_text(json.dumps({"argv": [sys.executable, "-m", "workbench.train", str(rd.path)]}))
    rd.write_status(state=state, stage=stage, name=name, model="builtin:tiny-lm", created=now - 65,
                    started=now - 64, ended=now - 2, exit_code=0 if state == "completed" else 1, host=hostname(),
                    runner_pid=None, **extra)
    rows = [{"event": "train_begin", "step": 0, "max_steps": 3, "time": now - 60}]
    rows += [{"step": s, "time": now - 60 + s, "epoch": s / 3, "loss": 2.0 / s, "reward": 0.25 * s} for s in (1, 2, 3)]
    rows += [{"event": "train_end", "step": 3, "time": now - 3}]
    rd.metrics_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    samples = [
        {"step": 3, "prompt": "What is 2 + 3?", "completion": "<answer>4</answer>", "reward": 1.0,
         "rewards": {"format": 1.0, "correctness": 0.0}, "advantage": -0.5},
        {"step": 3, "prompt": "What is 2 + 3?", "completion": "<answer>5</answer>", "reward": 3.0,
         "rewards": {"format": 1.0, "correctness": 2.0}, "advantage": 0.5},
        {"step": 1, "prompt": "old", "completion": "old completion", "reward": 9.0},
    ]
    rd.samples_path.write_text("".join(json.dumps(r) + "\n" for r in samples))
    return rd


def test_ls_empty(runs_dir):
    proc = wb("--runs-dir", str(runs_dir), "ls")
    assert proc.returncode == 0
    assert f"no runs in {runs_dir}" in proc.stdout


def test_ls_missing_runs_dir_via_env(tmp_path):
    proc = wb("ls", env={"WORKBENCH_RUNS": str(tmp_path / "nowhere")})
    assert proc.returncode == 0 and "no runs in" in proc.stdout and "nowhere" in proc.stdout


def test_ls_populated(runs_dir):
    done = finished_run(runs_dir)
    failed = finished_run(runs_dir, "sft-broke", state="failed", stage="sft", error="RuntimeError: boom")
    proc = wb("ls", "--runs-dir", str(runs_dir), env={"COLUMNS": "120"})  # --runs-dir after the command works too
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["RUN", "STATE", "STAGE", "MODEL", "STEP", "REWARD", "LOSS", "AGE", "TIME"]
    by_id = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(by_id) == {done.id, failed.id}
    assert by_id[done.id][1:6] == ["completed", "grpo", "builtin:tiny-lm", "3/3", "0.75"]
    assert by_id[done.id][6] == "0.6667"  # latest loss
    assert by_id[failed.id][1:3] == ["failed", "sft"]


def test_show_finished_run(runs_dir):
    rd = finished_run(runs_dir)
    proc = wb("--runs-dir", str(runs_dir), "show", rd.id)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"run       {rd.id}" in out
    assert "state     completed (exit code 0)" in out
    assert "3/3 100%" in out
    assert "workbench.train" in out  # the command from launch.json
    assert "loss=0.6667" in out and "reward=0.75" in out
    assert "samples   step 3, 2 completions (best first):" in out
    sample_lines = [line for line in out.splitlines() if line.startswith("    reward")]  # under their prompt
    assert len(sample_lines) == 2
    assert "<answer>5</answer>" in sample_lines[0] and "<answer>4</answer>" in sample_lines[1]  # best first
    assert "old completion" not in out
    assert "error" not in out


def test_show_failed_run_shows_error(runs_dir):
    rd = finished_run(runs_dir, "bad", state="failed", error="RuntimeError: boom", hint="lower the batch size")
    proc = wb("--runs-dir", str(runs_dir), "show", "last")
    assert proc.returncode == 0
    assert rd.id in proc.stdout
    assert "error     RuntimeError: boom" in proc.stdout and "hint      lower the batch size" in proc.stdout


def test_tail_finished_run(runs_dir):
    rd = finished_run(runs_dir)
    proc = wb("--runs-dir", str(runs_dir), "tail", rd.id)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert out[0] == "-- train_begin at step 0 (max_steps 3)"
    assert out[1].startswith("step 1: ") and "loss=2" in out[1] and "reward=0.25" in out[1]
    assert "-- train_end at step 3" in out
    assert out[-1].startswith(f"run {rd.id} completed after ")


def test_tail_starts_from_the_last_lines(runs_dir):
    rd = finished_run(runs_dir)
    proc = wb("--runs-dir", str(runs_dir), "tail", "-n", "2", rd.id)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert out[0].startswith("step 3: ") and out[1] == "-- train_end at step 3", out
    proc = wb("--runs-dir", str(runs_dir), "tail", "-n", "0", rd.id)
    assert proc.stdout.splitlines()[0] == "-- train_begin at step 0 (max_steps 3)"


def test_show_reads_only_the_newest_samples_of_a_big_file(runs_dir):
    rd = finished_run(runs_dir)
    with open(rd.samples_path, "a") as f:  # ~6 MB of older steps before the newest one
        for step in range(4, 20_004):
            f.write(json.dumps({"step": step, "completion": "x" * 250, "reward": 0.0}) + "\n")
        f.write(json.dumps({"step": 20_004, "completion": "<answer>newest</answer>", "reward": 3.0}) + "\n")
    proc = wb("--runs-dir", str(runs_dir), "show", rd.id)
    assert proc.returncode == 0, proc.stderr
    assert "samples   step 20004, 1 completions" in proc.stdout and "newest" in proc.stdout


def test_tail_failed_run_exits_1(runs_dir):
    rd = finished_run(runs_dir, "bad", state="failed", error="RuntimeError: boom")
    proc = wb("--runs-dir", str(runs_dir), "tail", rd.id)
    assert proc.returncode == 1
    assert f"run {rd.id} failed" in proc.stdout
    assert "error: RuntimeError: boom" in proc.stderr and str(rd.stdout_path) in proc.stderr


def test_stop_finished_run(runs_dir):
    rd = finished_run(runs_dir)
    proc = wb("--runs-dir", str(runs_dir), "stop", rd.id)
    assert proc.returncode == 0
    assert f"run {rd.id}: completed" in proc.stdout
    assert not rd.stop_request_path.exists()
    assert rd.read_status()["state"] == "completed"


@pytest.mark.parametrize("command", ["show", "tail", "stop"])
def test_unknown_run_id_exits_2(runs_dir, command):
    finished_run(runs_dir)
    proc = wb("--runs-dir", str(runs_dir), command, "no-such-run")
    assert proc.returncode == 2
    assert "no run 'no-such-run'" in proc.stderr and "workbench ls" in proc.stderr


@pytest.mark.parametrize("stage", ["grpo", "sft"])
def test_new_prints_a_recipe_that_validates(stage, runs_dir, tmp_path):
    proc = wb("new", stage, cwd=tmp_path)
    assert proc.returncode == 0 and f'stage = "{stage}"' in proc.stdout
    recipe = tmp_path / "elsewhere" / f"{stage}.toml"
    recipe.parent.mkdir()
    recipe.write_text(proc.stdout)
    check = wb("--runs-dir", str(runs_dir), "validate", str(recipe), cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    assert f"ok (stage {stage}" in check.stdout


def test_new_to_file_and_no_clobber(tmp_path):
    out = tmp_path / "mine.toml"
    proc = wb("new", "grpo", "-o", str(out))
    assert proc.returncode == 0 and out.is_file() and 'stage = "grpo"' in out.read_text()
    out.write_text("# my edits\n")
    proc = wb("new", "grpo", "-o", str(out))
    assert proc.returncode == 2 and "already exists" in proc.stderr
    assert out.read_text() == "# my edits\n"
    assert wb("new", "grpo", "-o", str(out), "--force").returncode == 0
    assert 'stage = "grpo"' in out.read_text()


def test_new_unknown_stage_exits_2():
    proc = wb("new", "grpp")
    assert proc.returncode == 2 and "unknown stage 'grpp'" in proc.stderr and "did you mean 'grpo'" in proc.stderr


HEAVY = ("torch", "transformers", "trl", "peft", "datasets", "deepspeed", "accelerate")


def test_cli_imports_no_training_stack(runs_dir, tmp_path):
    """Importing the CLI and running its light commands loads none of the heavy training libraries."""
    finished_run(runs_dir)
    code = f"""
import io, sys, contextlib
import workbench.cli as cli
sink = io.StringIO()
with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
    codes = [cli.main(["--runs-dir", {str(runs_dir)!r}, cmd, *rest]) for cmd, *rest in (
        ["validate", {str(ROOT / 'recipes' / 'grpo-tiny.toml')!r}], ["ls"], ["show", "last"], ["tail", "last"],
        ["new", "grpo"])]
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {set(HEAVY)!r})
print(codes, heavy)
sys.exit(0 if codes == [0, 0, 0, 0, 0] and not heavy else 1)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_bad_input_messages_do_not_start_with_a_colon():
    proc = wb("new", "grpp")
    assert proc.returncode == 2
    assert proc.stderr.startswith("[stage]: unknown stage 'grpp'")


def test_follow_and_stop_a_live_run_from_the_cli(runs_dir, monkeypatch):
    """A run launched through the core is listed, followed and stopped by separate CLI processes."""
    from tests.core.fakes import FAKE, recipe_for, wait_training
    from workbench.core import supervisor
    from workbench.core.launch import LaunchPlan

    monkeypatch.setattr(supervisor, "launch_plan", lambda recipe, run_dir: LaunchPlan(
        [sys.executable, str(FAKE), "obey", str(run_dir)], {"WORKBENCH_RUN_DIR": str(run_dir)}))
    got = supervisor.launch(recipe_for("obey"), runs_dir)
    try:
        wait_training(got.run)
        ls = wb("--runs-dir", str(runs_dir), "ls")
        assert got.run.id in ls.stdout and "running" in ls.stdout
        tail = subprocess.Popen(workbench_cmd("--runs-dir", str(runs_dir), "tail", "last"), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)
        stop = wb("--runs-dir", str(runs_dir), "stop", got.run.id[-8:], "--timeout", "15")
        assert stop.returncode == 0 and f"run {got.run.id}: stopped" in stop.stdout
        out, err = tail.communicate(timeout=20)
        assert tail.returncode == 1, err  # the run did not complete
        assert "-- train_begin at step 0 (max_steps 3)" in out and "step 1: loss=1" in out
        assert "-- train_end at step" in out and f"run {got.run.id} stopped" in out
        assert got.process.wait(timeout=10) == 0
    finally:
        if got.process.poll() is None:
            os.killpg(got.process.pid, 9)
            got.process.wait()
