"""End to end: a pipeline runs as a detached process that outlives the CLI following it and the shell that launched
it, and checks every stage before it starts. The chaining itself (stages in order, each from the previous stage's
final model, `ls` grouping) is asserted on the shipped demo pipeline in test_demo_learns.py."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import RECIPES, workbench_cmd
from workbench.core import pipeline, supervisor
from workbench.core.recipe import Recipe
from workbench.core.rundir import FINAL_STATES, RunDir, pid_alive

pytestmark = pytest.mark.e2e


def shrink(src, dst, **train):
    r = Recipe.load(src)
    for k, v in train.items():
        r.set(f"train.{k}", v)
    for key in ("data.path", "eval.data"):  # relative to the shipped recipes: absolute in the copy
        if r.get(key):
            r.set(key, str(r.resolve_path(r.get(key))))
    r.save(dst)


def cli_child(shell_pid: int) -> int | None:
    """The workbench CLI the launching shell is running (its child), if it still runs."""
    try:
        children = Path(f"/proc/{shell_pid}/task/{shell_pid}/children").read_text().split()
    except OSError:
        return None
    for pid in map(int, children):
        try:
            if b"workbench" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            continue
    return None


def wait(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_ctrl_c_then_hang_up_during_stage_1_and_the_pipeline_still_completes_in_order(runs_dir, tmp_path):
    """Ctrl-C on the following CLI while stage 1 trains, then the launching shell is hung up (an SSH drop): stage 2
    still starts only after stage 1 completed, and the pipeline completes."""
    pipe = tmp_path / "two"
    pipe.mkdir()
    shrink(RECIPES / "demo" / "01-pretrain.toml", pipe / "01-pretrain.toml", max_steps=40)
    shrink(RECIPES / "demo" / "02-sft.toml", pipe / "02-sft.toml", max_steps=3)
    cmd = " ".join(workbench_cmd("--runs-dir", str(runs_dir), "pipeline", str(pipe)))
    shell = subprocess.Popen(["bash", "-c", f"{cmd}; sleep 60"], start_new_session=True, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        pd = wait(lambda: [pd for pd, _ in pipeline.list_pipelines(runs_dir)], 90, "the pipeline")[0]
        first = wait(lambda: pipeline.current_run(pd), 90, "stage 1's run")
        wait(lambda: supervisor.status(first)["state"] == "running", 90, "stage 1 running")
        os.kill(wait(lambda: cli_child(shell.pid), 10, "the CLI"), signal.SIGINT)  # Ctrl-C
        wait(lambda: cli_child(shell.pid) is None, 30, "the CLI to stop following")
        os.killpg(shell.pid, signal.SIGHUP)  # the terminal goes away
        out = shell.communicate(timeout=60)[0]
        assert "stopped following; the pipeline goes on" in out, out
        assert supervisor.status(first)["state"] == "running", "stage 1 was not cut short"
        assert pid_alive(pd.read_status()["runner_pid"]), "the pipeline runner died with the shell"
        wait(lambda: pipeline.pipeline_status(pd)["state"] in FINAL_STATES, 400, "the pipeline to end")
        st = pipeline.pipeline_status(pd)
        assert st["state"] == "completed", (st, pd.log_path.read_text()[-2000:])
        a, b = (RunDir(runs_dir / s["run"]).read_status() for s in st["stages"])
        assert a["state"] == b["state"] == "completed"
        assert b["created"] >= a["ended"], "stage 2 started only after stage 1 completed"
        assert b["parent"] == first.id and b["model"] == f"run:{first.id}"
    finally:
        if shell.poll() is None:
            os.killpg(shell.pid, signal.SIGKILL)


def test_pipeline_validates_every_stage_before_starting(runs_dir, tmp_path):
    pipe = tmp_path / "broken"
    pipe.mkdir()
    shrink(RECIPES / "demo" / "01-pretrain.toml", pipe / "01-pretrain.toml", max_steps=3)
    (pipe / "02-sft.toml").write_text((RECIPES / "demo" / "02-sft.toml").read_text().replace(
        "max_steps = 300", "max_stepz = 300"))
    proc = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "pipeline", str(pipe)),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "02-sft.toml" in proc.stderr and "max_stepz" in proc.stderr and "did you mean 'max_steps'" in proc.stderr
    assert not any(runs_dir.iterdir()), "nothing started"


def test_run_previous_outside_a_pipeline_is_explained(tmp_path):
    proc = subprocess.run(workbench_cmd("validate", str(RECIPES / "demo" / "02-sft.toml")),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "workbench pipeline" in proc.stderr
