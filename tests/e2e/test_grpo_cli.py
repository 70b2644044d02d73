"""End to end: the real GRPO recipe through the real CLI on the built-in tiny model (trl, no fakes)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import RECIPES, workbench_cmd
from workbench.core import supervisor
from workbench.core.rundir import RunDir, pid_alive

pytestmark = pytest.mark.e2e


def only_run(runs_dir: Path) -> RunDir:
    runs = [p for p in runs_dir.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return RunDir(runs[0])


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_grpo_recipe_runs_to_completion(runs_dir):
    proc = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "run", str(RECIPES / "grpo-tiny.toml"),
                                        "--set", "train.max_steps=30", "--set", "train.save_steps=15",
                                        "--set", "train.per_device_train_batch_size=8"),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "completed" in proc.stdout
    rd = only_run(runs_dir)
    st = rd.read_status()
    assert st["state"] == "completed" and st["exit_code"] == 0

    rows = read_jsonl(rd.metrics_path)
    events = [r["event"] for r in rows if "event" in r]
    assert events[0] == "train_begin" and events[-1] == "train_end"
    assert rows[0]["max_steps"] == 30
    logs = [r for r in rows if "event" not in r and "loss" in r]
    assert len(logs) == 30, "one metrics row per step (logging_steps = 1), rank 0 only"
    keys = set().union(*logs)
    for key in ("reward", "reward_std", "rewards/format/mean", "rewards/correctness/mean", "kl", "loss"):
        assert key in keys, key
    assert [r["step"] for r in logs] == list(range(1, 31))

    samples = read_jsonl(rd.samples_path)
    assert len(samples) == 30 * 8, "every completion of every step (8 per step)"
    s = samples[0]
    assert set(s["rewards"]) == {"format", "correctness"}
    assert isinstance(s["reward"], float) and "advantage" in s and s["completion"] is not None
    assert {r["group"] for r in samples if r["step"] == 1} == {0, 1}, "8 completions = 2 prompts x 4 generations"
    assert "What is" in s["prompt"]

    assert (rd.final_model / "config.json").is_file()
    assert (rd.checkpoints / "checkpoint-15").is_dir()
    launch = json.loads(rd.launch_path.read_text())
    assert launch["argv"][1:3] == ["-m", "workbench.train"]
    frozen = rd.recipe_path.read_text()
    assert str(RECIPES.parent / "assets" / "data" / "arith-prompts.jsonl") in frozen, "paths frozen absolute"

    show = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "show", rd.id), capture_output=True, text=True)
    assert show.returncode == 0 and "completed" in show.stdout and "samples" in show.stdout
    ls = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "ls", "--wide"), capture_output=True, text=True)
    assert rd.id in ls.stdout and "30/30" in ls.stdout


def test_detached_run_survives_sighup_of_launching_shell(runs_dir):
    """The launching shell (a session leader like an SSH login shell) gets SIGHUP; the run goes on."""
    cmd = " ".join(workbench_cmd("--runs-dir", str(runs_dir), "run", str(RECIPES / "grpo-tiny.toml"),
                                 "--detach", "--set", "train.max_steps=60"))
    shell = subprocess.Popen(["bash", "-c", f"{cmd}; sleep 30"], start_new_session=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 90
        while time.time() < deadline and not any(runs_dir.iterdir()):
            time.sleep(0.1)
        rd = only_run(runs_dir)
        while time.time() < deadline and rd.read_status().get("state") != "running":
            time.sleep(0.1)
        os.killpg(shell.pid, signal.SIGHUP)
        shell.wait(timeout=60)  # generous: a loaded 2-core machine can be slow to deliver and reap
        runner = rd.read_status()["runner_pid"]
        time.sleep(1.0)
        assert pid_alive(runner), "the runner died with the launching shell"
        deadline = time.time() + 240
        while time.time() < deadline and supervisor.status(rd)["state"] in ("queued", "running"):
            time.sleep(0.5)
        st = supervisor.status(rd)
        assert st["state"] == "completed", st
    finally:
        if shell.poll() is None:
            os.killpg(shell.pid, signal.SIGKILL)


def test_stop_checkpoints_and_ends_cleanly(runs_dir):
    proc = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "run", str(RECIPES / "grpo-tiny.toml"),
                                        "--detach", "--set", "train.max_steps=2000"),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    rd = only_run(runs_dir)
    deadline = time.time() + 120
    while time.time() < deadline and not (rd.metrics_path.exists() and '"loss"' in rd.metrics_path.read_text()):
        time.sleep(0.2)
    stop = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "stop", rd.id), capture_output=True,
                          text=True, timeout=120)
    assert stop.returncode == 0, stop.stderr
    st = rd.read_status()
    assert st["state"] == "stopped" and st["exit_code"] == 0, st
    rows = read_jsonl(rd.metrics_path)
    end = [r for r in rows if r.get("event") == "train_end"]
    assert end and end[0]["step"] < 2000
    assert (rd.checkpoints / f"checkpoint-{end[0]['step']}").is_dir(), "a stop saves a checkpoint"
    assert not pid_alive(st["runner_pid"]) and not pid_alive(st["trainer_pid"])


def test_failed_run_reports_exception(runs_dir, tmp_path):
    bad = tmp_path / "rewards.py"
    bad.write_text("def boom(completions, **kwargs):\n    raise ValueError('reward exploded')\n")
    proc = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "run", str(RECIPES / "grpo-tiny.toml"),
                                        "--set", f'rewards.funcs=["{bad}:boom"]', "--set", "rewards.weights=[]",
                                        "--allow-code"),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rd = only_run(runs_dir)
    st = rd.read_status()
    assert st["state"] == "failed"
    assert "ValueError: reward exploded" in st["error"]
    assert "reward exploded" in proc.stderr
    assert "Traceback" in rd.stdout_path.read_text()


def test_user_reward_function_from_file(runs_dir, tmp_path):
    rewards = tmp_path / "my_rewards.py"
    rewards.write_text("def short(completions, **kwargs):\n"
                       "    return [1.0 if len(str(c)) < 60 else 0.0 for c in completions]\n")
    proc = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "run", str(RECIPES / "grpo-tiny.toml"),
                                        "--set", f'rewards.funcs=["format", "{rewards}:short"]',
                                        "--set", "train.max_steps=3"),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, "user code needs consent"
    assert "--allow-code" in proc.stderr and str(rewards) in proc.stderr and not any(runs_dir.iterdir())
    proc = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "run", str(RECIPES / "grpo-tiny.toml"),
                                        "--set", f'rewards.funcs=["format", "{rewards}:short"]',
                                        "--set", "train.max_steps=3", "--allow-code"),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rd = only_run(runs_dir)
    samples = read_jsonl(rd.samples_path)
    assert set(samples[0]["rewards"]) == {"format", "short"}
    assert "rewards/short/mean" in rd.metrics_path.read_text()


def test_sft_recipe_runs_to_completion(runs_dir):
    proc = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "run", str(RECIPES / "sft-tiny.toml")),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rd = only_run(runs_dir)
    logs = [r for r in read_jsonl(rd.metrics_path) if "loss" in r]
    assert logs and logs[-1]["loss"] < logs[0]["loss"], "SFT loss goes down"
    assert (rd.final_model / "config.json").is_file()


def test_torchrun_two_processes_write_one_copy(runs_dir):
    proc = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "run", str(RECIPES / "grpo-tiny.toml"),
                                        "--set", "launch.backend=torchrun", "--set", "launch.num_processes=2",
                                        "--set", "train.max_steps=4", "--set", "train.per_device_train_batch_size=4",
                                        "--set", "train.save_steps=100"),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rd = only_run(runs_dir)
    st = rd.read_status()
    assert st["state"] == "completed" and st["exit_code"] == 0, st
    logs = [r for r in read_jsonl(rd.metrics_path) if "loss" in r]
    assert [r["step"] for r in logs] == [1, 2, 3, 4], "rank 0 only: one metrics line per step"
    assert json.loads(rd.launch_path.read_text())["argv"][1:5] == ["-m", "torch.distributed.run", "--standalone",
                                                                   "--nproc_per_node=2"]
    # 4 completions per process per step, gathered: 8 per step
    assert len(read_jsonl(rd.samples_path)) == 4 * 8


def test_stop_then_resume_continues_to_the_same_final_step(runs_dir):
    proc = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "run", str(RECIPES / "grpo-tiny.toml"),
                                        "--detach", "--set", "train.max_steps=40", "--set", "train.save_steps=5"),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    rd = only_run(runs_dir)
    deadline = time.time() + 120
    while time.time() < deadline and not (rd.checkpoints / "checkpoint-5").is_dir():
        time.sleep(0.2)
    subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "stop", rd.id), capture_output=True, timeout=120)
    assert rd.read_status()["state"] == "stopped"
    resumed = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "resume", rd.id), capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    st = rd.read_status()
    assert st["state"] == "completed" and st["attempt"] == 2
    from workbench.core.metrics import read_history

    hist = read_history(rd.metrics_path)
    assert hist.points("loss")[0] == [float(s) for s in range(1, 41)], "one line: no duplicated steps"
    again = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "resume", rd.id), capture_output=True,
                           text=True, timeout=60)
    assert again.returncode == 2 and "already completed" in again.stderr
