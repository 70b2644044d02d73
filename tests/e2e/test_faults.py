"""Fault injection on real runs: SIGKILL mid-run then resume; the TUI's terminal hung up mid-run; a full disk.

Each asserts that nothing is lost: the run ends in a true state, resumes to the same final step, and the charts
show one continuous line.
"""
from __future__ import annotations

import errno
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest

from tests.conftest import RECIPES, workbench_cmd
from workbench.core import supervisor
from workbench.core.metrics import read_history
from workbench.core.problems import BadInput
from workbench.core.recipe import Recipe
from workbench.core.rundir import RunDir, pid_alive

pytestmark = pytest.mark.e2e


def wait(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def launch_detached(runs_dir, *sets) -> RunDir:
    args = ["--runs-dir", str(runs_dir), "run", str(RECIPES / "grpo-tiny.toml"), "--detach"]
    for s in sets:
        args += ["--set", s]
    proc = subprocess.run(workbench_cmd(*args), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    (path,) = [p for p in runs_dir.iterdir() if p.is_dir()]
    return RunDir(path)


def test_sigkill_at_a_random_step_then_resume_reaches_the_same_end(runs_dir):
    rd = launch_detached(runs_dir, "train.max_steps=40", "train.save_steps=4")
    kill_after = random.Random().randint(6, 20)
    wait(lambda: read_history(rd.metrics_path).step >= kill_after, 180, f"step {kill_after}")
    trainer = rd.read_status()["trainer_pid"]
    os.kill(trainer, signal.SIGKILL)  # what the OOM killer does
    t0 = time.monotonic()
    wait(lambda: supervisor.status(rd)["state"] == "killed", 10, "state killed")
    assert time.monotonic() - t0 < 10
    assert "SIGKILL" in rd.read_status()["error"]
    resumed = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "resume", rd.id), capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    hist = read_history(rd.metrics_path)
    assert hist.step == 40 and rd.read_status()["state"] == "completed"
    assert hist.points("loss")[0] == [float(s) for s in range(1, 41)], "one continuous line, no repeated steps"


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_tui_hung_up_mid_run_leaves_the_run_alone(runs_dir):
    rd = launch_detached(runs_dir, "train.max_steps=150", "train.save_steps=1000")
    wait(lambda: rd.read_status().get("state") == "running", 60, "running")
    session = f"wb-{uuid.uuid4().hex[:8]}"
    env = f"HF_HUB_OFFLINE=1 WORKBENCH_CACHE={os.environ['WORKBENCH_CACHE']} TERM=xterm-256color"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "30",
                    f"env {env} {sys.executable} -m workbench --runs-dir {runs_dir}"], check=True)
    try:
        wait(lambda: rd.id in subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True,
                                             text=True).stdout, 20, "the run on screen")
        subprocess.run(["tmux", "send-keys", "-t", session, "Enter"], check=True)  # watch it
        time.sleep(1.0)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session])  # the terminal goes away: SIGHUP to the TUI
    runner = rd.read_status()["runner_pid"]
    time.sleep(1.0)
    assert pid_alive(runner), "the run died with the TUI"
    at = read_history(rd.metrics_path).step
    wait(lambda: read_history(rd.metrics_path).step >= at + 5, 60, f"step {at + 5}: it trains on")
    st = supervisor.stop(rd)  # not the 150 steps to the end: a stop asks the same trainer to save and end
    assert st["state"] == "stopped" and st["exit_code"] == 0, st
    last = read_history(rd.metrics_path).step
    assert last < 150 and (rd.checkpoints / f"checkpoint-{last}").is_dir(), (last, st)


def test_full_disk_while_preparing_leaves_nothing(runs_dir, monkeypatch):
    """ENOSPC while the run directory is written: a clear message, no half-made run directory."""
    from workbench.core import recipe as recipe_mod

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(recipe_mod, "write_text_atomic", full)
    with pytest.raises(BadInput) as e:
        supervisor.launch(Recipe.load(RECIPES / "grpo-tiny.toml"), runs_dir)
    assert "No space left on device" in str(e.value)
    assert list(runs_dir.iterdir()) == []


def test_full_tmpfs_runs_dir(tmp_path):
    """A real full filesystem where tmpfs can be mounted (root); otherwise the simulated test above covers it."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root or no permission)")
    try:
        (mnt / "filler").write_bytes(b"x" * 12 * 1024)
        proc = subprocess.run(workbench_cmd("--runs-dir", str(mnt), "run", str(RECIPES / "grpo-tiny.toml"),
                                            "--detach"), capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr and "space" in proc.stderr.lower()
        assert sorted(p.name for p in mnt.iterdir()) == ["filler"], "no half-made run directory"
    finally:
        subprocess.run(["umount", str(mnt)])
