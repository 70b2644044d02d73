"""PPO through the real CLI: a stop mid-run leaves a complete checkpoint at the stop step; resume finishes the run
with the steps continuing (trl 1.12's PPOTrainer has neither on its own)."""
from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.conftest import RECIPES, workbench_cmd
from workbench.core import supervisor
from workbench.core.metrics import read_history
from workbench.core.rundir import RunDir

pytestmark = pytest.mark.e2e

MAX_STEPS = 6


def wait(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def cli(runs_dir, *args, timeout=120):
    proc = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), *args), capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc


def events(rd, name):
    rows = [json.loads(line) for line in rd.metrics_path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r.get("event") == name]


def test_ppo_stop_checkpoints_the_stop_step_and_resume_completes(runs_dir):
    cli(runs_dir, "run", str(RECIPES / "ppo-tiny.toml"), "--detach", "--set", f"train.max_steps={MAX_STEPS}",
        "--set", "train.save_steps=100", "--set", "train.response_length=8")
    (path,) = [p for p in runs_dir.iterdir() if p.is_dir()]
    rd = RunDir(path)
    wait(lambda: read_history(rd.metrics_path).step >= 2, 90, "step 2")
    cli(runs_dir, "stop", rd.id)

    assert supervisor.status(rd)["state"] == "stopped"
    (end,) = events(rd, "train_end")
    stop_step = end["step"]
    assert 2 <= stop_step < MAX_STEPS
    ckpt = rd.checkpoints / f"checkpoint-{stop_step}"
    state = json.loads((ckpt / "trainer_state.json").read_text())  # complete: written last
    assert state["global_step"] == stop_step and (ckpt / "value_model").is_dir()
    assert [e["step"] for e in events(rd, "checkpoint")] == [stop_step], "only the stop step (save_steps=100)"
    assert supervisor.latest_checkpoint(rd) == ckpt

    cli(runs_dir, "resume", rd.id, timeout=180)
    assert supervisor.status(rd)["state"] == "completed"
    (resumed,) = events(rd, "resume")
    assert resumed["step"] == stop_step
    assert [e["step"] for e in events(rd, "train_begin")] == [0, stop_step]
    hist = read_history(rd.metrics_path)
    assert hist.step == MAX_STEPS and hist.max_steps == MAX_STEPS
    assert hist.points("objective/kl")[0] == [float(s) for s in range(1, MAX_STEPS + 1)], "one line, 1..max"
    assert (rd.final_model / "config.json").is_file()
