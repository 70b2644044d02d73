"""The run lifecycle (workbench.core.lifecycle): who may write which state, what counts as alive, how live
states are settled, prepared runs, orphaned trainers, runner-less (Slurm) runs, saving-aware stops and
half-written checkpoints. Real processes (the runner and the fake trainer); no torch."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.core.fakes import FAKE, alive, recipe_for, wait_training, wait_until
from workbench.core import lifecycle, supervisor
from workbench.core.launch import LaunchPlan
from workbench.core.problems import BadInput
from workbench.core.rundir import RunDir, boot_time, hostname

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake_plan(monkeypatch):
    def use(mode: str) -> None:
        monkeypatch.setattr(supervisor, "launch_plan", lambda recipe, run_dir: LaunchPlan(
            [sys.executable, str(FAKE), mode, str(run_dir)], {"WORKBENCH_RUN_DIR": str(run_dir)}))
    return use


@pytest.fixture
def cleanup():
    pids: list[int] = []
    yield pids
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


# -- the table -------------------------------------------------------------------------------------------------
def test_only_the_lifecycle_module_writes_states():
    """Every `state` in a status.json is decided in one place (docs/design.md has the table)."""
    offenders = []
    for path in (ROOT / "workbench").rglob("*.py"):
        if path.name == "lifecycle.py":
            continue
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"(write_status|update_status)\(([^()]|\([^()]*\))*\bstate=", text):
            offenders.append(f"{path.relative_to(ROOT)}:{text[:m.start()].count(chr(10)) + 1}")
    assert not offenders, offenders


def test_refused_transitions(runs_dir):
    rd = RunDir.create(runs_dir, "t")
    lifecycle.transition(rd, lifecycle.QUEUED, lifecycle.LAUNCHER)
    with pytest.raises(lifecycle.TransitionRefused):
        lifecycle.transition(rd, lifecycle.RUNNING, lifecycle.TRAINER)  # only the runner starts a queued run
    lifecycle.transition(rd, lifecycle.KILLED, lifecycle.READER)
    # a runner late to the party must not resurrect a settled run
    assert lifecycle.try_transition(rd, lifecycle.RUNNING, lifecycle.RUNNER) is None
    assert rd.read_status()["state"] == "killed"
    with pytest.raises(lifecycle.TransitionRefused):
        lifecycle.transition(rd, lifecycle.COMPLETED, lifecycle.RUNNER)  # final is final
    lifecycle.transition(rd, lifecycle.QUEUED, lifecycle.LAUNCHER)  # ...except that resume re-queues it


def test_member_of_a_multi_node_run_ends_with_its_own_outcome(runs_dir):
    """Rank-1 machine: it trained (its own outcome and events), it holds no metric rows; exit 0 is success."""
    rd = RunDir.create(runs_dir, "member")
    lifecycle.transition(rd, lifecycle.QUEUED, lifecycle.LAUNCHER, machine_rank=1, num_machines=2, role="member")
    lifecycle.transition(rd, lifecycle.RUNNING, lifecycle.RUNNER)
    rd.metrics_path.write_text('{"event": "train_begin", "step": 0, "max_steps": 5}\n'
                               '{"event": "train_end", "step": 5}\n')
    rd.write_status(outcome="completed", phase="done")
    st = lifecycle.runner_finished(rd, 0, False, time.time() - 5)
    assert st["state"] == "completed" and not st.get("error")


# -- prepared runs ---------------------------------------------------------------------------------------------
def test_prepared_run_has_no_clock_can_be_started_or_deleted(runs_dir, fake_plan, capsys):
    fake_plan("succeed")
    rd = supervisor.prepare(recipe_for("succeed"), runs_dir)
    st = supervisor.status(rd)
    assert st["state"] == "prepared" and st["display_state"] == "prepared"
    from workbench.core.summary import duration_of

    assert duration_of(st) is None  # no clock that keeps counting
    t0 = time.monotonic()
    said: list[str] = []
    assert supervisor.stop(rd, on_phase=said.append)["state"] == "prepared"
    assert time.monotonic() - t0 < 1 and "never started" in said[0] and not rd.stop_requested()
    with pytest.raises(BadInput, match="never started"):
        supervisor.resume(rd)
    launched = supervisor.start(rd)
    launched.process.wait(timeout=30)
    assert supervisor.status(rd)["state"] == "completed"
    with pytest.raises(BadInput, match="not prepared"):
        supervisor.start(rd)
    other = supervisor.prepare(recipe_for("succeed"), runs_dir)
    supervisor.delete(other)
    assert not other.path.exists()


def test_cli_start_runs_a_prepared_run(runs_dir, fake_plan, monkeypatch):
    from workbench import cli

    fake_plan("succeed")
    rd = supervisor.prepare(recipe_for("succeed"), runs_dir)
    assert cli.main(["--runs-dir", str(runs_dir), "start", rd.id]) == 0
    assert supervisor.status(rd)["state"] == "completed"
    assert cli.main(["--runs-dir", str(runs_dir), "rm", rd.id]) == 0 and not rd.path.exists()


# -- liveness: an orphaned trainer -----------------------------------------------------------------------------
def test_orphaned_trainer_is_alive_and_can_be_stopped(runs_dir, fake_plan, cleanup):
    fake_plan("obey")
    got = supervisor.launch(recipe_for("obey"), runs_dir)
    st = wait_training(got.run)
    cleanup.append(st["trainer_pid"])
    os.kill(got.process.pid, signal.SIGKILL)  # only the runner dies
    got.process.wait(timeout=5)
    st = supervisor.status(got.run)
    assert st["state"] == "running", "the trainer still trains: the run is not dead"
    assert lifecycle.processes(got.run, st) == [st["trainer_pid"]]
    t0 = time.monotonic()
    final = supervisor.stop(got.run, grace=20, term_grace=5)
    assert final["state"] == "stopped" and time.monotonic() - t0 < 15
    assert not alive(st["trainer_pid"])


def test_orphaned_trainer_that_ignores_the_stop_is_signalled(runs_dir, fake_plan, cleanup):
    fake_plan("hang")
    got = supervisor.launch(recipe_for("hang"), runs_dir)
    st = wait_training(got.run)
    cleanup.append(st["trainer_pid"])
    os.kill(got.process.pid, signal.SIGKILL)
    got.process.wait(timeout=5)
    phases: list[str] = []
    final = supervisor.stop(got.run, grace=0.5, term_grace=0.5, on_phase=phases.append)
    wait_until(lambda: not alive(st["trainer_pid"]), timeout=5, what="the orphan to die")
    assert final["state"] == "stopped"
    assert any("SIGKILL" in p for p in phases)


def test_reused_pid_is_not_the_run(runs_dir):
    """A recorded pid now used by an unrelated process (pid reuse) does not keep the run alive."""
    stranger = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        rd = RunDir.create(runs_dir, "reuse")
        lifecycle.transition(rd, lifecycle.QUEUED, lifecycle.LAUNCHER, host=hostname(), boot_time=boot_time(),
                             queued_at=time.time() - 60)
        rd.write_status(runner_pid=stranger.pid, pgid=stranger.pid)
        st = supervisor.status(rd)
        assert st["state"] == "killed" and alive(stranger.pid)
    finally:
        stranger.kill()
        stranger.wait()


# -- stop never destroys the checkpoint it asked for -----------------------------------------------------------
def test_escalation_waits_for_a_checkpoint_being_written(runs_dir, fake_plan, cleanup):
    fake_plan("slowsave")
    got = supervisor.launch(recipe_for("slowsave"), runs_dir)
    st = wait_training(got.run)
    cleanup.append(st["trainer_pid"])
    phases: list[str] = []
    final = supervisor.stop(got.run, grace=0.3, term_grace=0.3, on_phase=phases.append)
    assert final["state"] == "stopped", phases
    assert any("writing a checkpoint" in p for p in phases)
    assert not any("SIGKILL" in p for p in phases)
    ckpt, skipped = lifecycle.resume_checkpoint(got.run)
    assert ckpt is not None and not skipped and (ckpt / "trainer_state.json").is_file()


def test_resume_skips_a_half_written_checkpoint(runs_dir):
    rd = RunDir.create(runs_dir, "torn")
    for step, complete in ((4, True), (8, True), (12, False)):
        d = rd.checkpoints / f"checkpoint-{step}"
        d.mkdir(parents=True)
        (d / "model.safetensors").write_bytes(b"x")
        if complete:
            (d / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    (rd.checkpoints / "checkpoint-8" / "trainer_state.json").write_text('{"global_st')  # torn write
    ckpt, skipped = lifecycle.resume_checkpoint(rd)
    assert ckpt.name == "checkpoint-4"
    assert [p.name for p in skipped] == ["checkpoint-12", "checkpoint-8"]


def test_resume_records_what_it_skipped(runs_dir, fake_plan):
    fake_plan("succeed")
    rd = supervisor.prepare(recipe_for("succeed"), runs_dir)
    lifecycle.transition(rd, lifecycle.QUEUED, lifecycle.LAUNCHER)
    lifecycle.transition(rd, lifecycle.KILLED, lifecycle.READER)
    for step, complete in ((2, True), (3, False)):
        d = rd.checkpoints / f"checkpoint-{step}"
        d.mkdir(parents=True)
        if complete:
            (d / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    got = supervisor.resume(rd)
    got.process.wait(timeout=30)
    st = rd.read_status()
    assert st["resume_from"].endswith("checkpoint-2")
    assert any("checkpoint-3" in n for n in st["resume_notes"])


# -- runs without a runner (Slurm) -----------------------------------------------------------------------------
def runnerless(runs_dir) -> RunDir:
    rd = RunDir.create(runs_dir, "slurm")
    lifecycle.transition(rd, lifecycle.PREPARED, lifecycle.LAUNCHER, host="node-1")
    lifecycle.transition(rd, lifecycle.RUNNING, lifecycle.TRAINER, runnerless=True, started=time.time())
    return rd


def test_runnerless_run_is_settled_by_its_trainers_outcome(runs_dir):
    rd = runnerless(runs_dir)
    rd.touch_heartbeat()
    assert supervisor.status(rd)["state"] == "running"
    rd.metrics_path.write_text('{"event": "train_begin", "step": 0}\n{"event": "train_end", "step": 3}\n')
    rd.write_status(outcome="completed", phase="done")
    assert supervisor.status(rd)["state"] == "completed"


def test_preempted_runnerless_run_is_lost_by_heartbeat_age(runs_dir):
    rd = runnerless(runs_dir)
    rd.touch_heartbeat()
    old = time.time() - lifecycle.RUNNERLESS_LOST_AFTER_S - 5
    os.utime(rd.heartbeat_path, (old, old))
    st = supervisor.status(rd)
    assert st["state"] == "lost" and "preempted" in st["error"]
