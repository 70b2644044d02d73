"""Supervisor and runner with a fake trainer (no torch): the real launch path, final states, stop escalation,
settling of runs whose process tree vanished, and finding runs."""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ASSETS
from tests.core.fakes import FAKE, alive, recipe_for, wait_training, wait_until
from workbench.core import supervisor
from workbench.core.launch import LaunchPlan
from workbench.core.problems import BadInput
from workbench.core.recipe import Recipe
from workbench.core.rundir import RunDir, boot_time, hostname


@pytest.fixture
def launch_fake(runs_dir, monkeypatch):
    launched: list[supervisor.Launched] = []

    def go(mode: str) -> supervisor.Launched:
        monkeypatch.setattr(supervisor, "launch_plan",
                            lambda recipe, run_dir: LaunchPlan(
                                [sys.executable, str(FAKE), mode, str(run_dir)], {"WORKBENCH_RUN_DIR": str(run_dir)}))
        got = supervisor.launch(recipe_for(mode), runs_dir)
        launched.append(got)
        return got

    yield go
    for got in launched:  # leave no process behind, whatever the test did
        st = got.run.read_status()
        if got.process.poll() is None:
            try:
                os.killpg(got.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        tpid = st.get("trainer_pid")
        if alive(tpid) and str(FAKE) in Path(f"/proc/{tpid}/cmdline").read_bytes().decode(errors="replace"):
            os.kill(tpid, signal.SIGKILL)
        got.process.wait(timeout=10)


# -- outcomes ------------------------------------------------------------------------------------------------
def test_successful_run(launch_fake, runs_dir):
    got = launch_fake("succeed")
    rd = got.run
    assert rd.path.parent == runs_dir and rd.id.endswith("-fake-succeed")
    assert stat.S_IMODE(rd.path.stat().st_mode) == 0o700
    assert got.process.wait(timeout=20) == 0
    st = supervisor.status(rd)
    assert st["state"] == "completed" and st["display_state"] == "completed"
    assert st["exit_code"] == 0 and "error" not in st
    assert st["runner_pid"] == got.process.pid and st["trainer_pid"] != got.process.pid
    assert st["ended"] >= st["started"] >= st["created"]
    launch = json.loads(rd.launch_path.read_text())
    assert launch["argv"] == [sys.executable, str(FAKE), "succeed", str(rd.path)]
    assert launch["env"]["WORKBENCH_RUN_DIR"] == str(rd.path)
    frozen = Recipe.load(rd.recipe_path)
    assert frozen.get("data.path") == str(ASSETS / "arith-prompts.jsonl")
    assert frozen.get("train.max_steps") == 3
    assert "training finished" in rd.stdout_path.read_text()
    assert rd.has_event("train_end")
    assert not alive(st["trainer_pid"])


def test_crashing_run_records_last_line(launch_fake):
    got = launch_fake("crash")
    assert got.process.wait(timeout=20) == 0  # the runner itself ends cleanly
    st = supervisor.status(got.run)
    assert st["state"] == "failed"
    assert st["exit_code"] == 1
    assert st["error"] == "RuntimeError: fake failure: CUDA error: device-side assert triggered"
    assert "Traceback" in got.run.stdout_path.read_text()


def test_out_of_memory_gets_a_hint(launch_fake):
    got = launch_fake("oom")
    assert got.process.wait(timeout=20) == 0
    st = supervisor.status(got.run)
    assert st["state"] == "failed" and "out of memory" in st["error"]
    assert "LoRA" in st["hint"] and "ZeRO" in st["hint"] and "batch" in st["hint"]


def test_hanging_run_is_escalated_to_sigkill(launch_fake):
    got = launch_fake("hang")
    rd = got.run
    st = wait_training(rd)
    trainer = st["trainer_pid"]
    phases: list[str] = []
    t0 = time.monotonic()
    final = supervisor.stop(rd, grace=1.0, term_grace=1.0, on_phase=phases.append)
    assert time.monotonic() - t0 < 10
    assert final["state"] == "stopped"
    assert len(phases) == 3, phases
    assert "stop requested" in phases[0] and "SIGTERM" in phases[1] and "SIGKILL" in phases[2]
    assert rd.stop_request_path.exists()
    assert got.process.wait(timeout=5) == -signal.SIGKILL
    wait_until(lambda: not alive(trainer), timeout=5, what="the trainer to be gone")
    assert rd.read_status()["state"] == "stopped"  # persisted, not only computed


def test_trainer_killed_by_sigkill(launch_fake):
    got = launch_fake("sleep")
    st = wait_training(got.run)
    os.kill(st["trainer_pid"], signal.SIGKILL)  # what the OOM killer does
    assert got.process.wait(timeout=20) == 0
    st = supervisor.status(got.run)
    assert st["state"] == "killed"
    assert st["signal"] == "SIGKILL" and st["exit_code"] == -9
    assert "SIGKILL" in st["error"] and "out-of-memory" in st["error"]


def test_stop_request_is_honoured(launch_fake):
    got = launch_fake("obey")
    rd = got.run
    wait_training(rd)
    phases: list[str] = []
    final = supervisor.stop(rd, grace=15.0, term_grace=1.0, on_phase=phases.append)
    assert final["state"] == "stopped"
    assert final["exit_code"] == 0
    assert len(phases) == 1 and "SIGTERM" not in phases[0]  # no escalation needed
    assert got.process.wait(timeout=5) == 0
    assert rd.has_event("checkpoint") and rd.has_event("train_end")


def test_runner_killed_with_its_child_is_settled_to_killed(launch_fake):
    got = launch_fake("sleep")
    rd = got.run
    st = wait_training(rd)
    assert st["pgid"] == got.process.pid
    os.killpg(st["pgid"], signal.SIGKILL)
    wait_until(lambda: not alive(got.process.pid) and not alive(st["trainer_pid"]), timeout=5,
               what="the process tree to die")
    assert rd.read_status()["state"] == "running"  # nobody recorded the end...
    settled = supervisor.status(rd)  # ...so the reader settles it (the runner is an unreaped zombie here)
    assert settled["state"] == "killed"
    assert "disappeared" in settled["error"]
    assert rd.read_status()["state"] == "killed"
    assert supervisor.status(rd)["state"] == "killed"  # stable on the next read


# -- settling without processes ------------------------------------------------------------------------------
def dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def hand_run(runs_dir: Path, name: str = "hand", **status) -> RunDir:
    rd = RunDir.create(runs_dir, name)
    rd.write_status(**{"state": "running", "runner_pid": dead_pid(), "host": hostname(), "boot_time": boot_time(),
                       "created": time.time() - 60, **status})
    return rd


def test_settle_dead_runner_after_train_end_is_completed(runs_dir):
    rd = hand_run(runs_dir, outcome="completed", phase="done")
    rd.metrics_path.write_text('{"event": "train_begin", "step": 0}\n{"event": "train_end", "step": 3}\n')
    assert supervisor.status(rd)["state"] == "completed"


def test_settle_train_end_without_the_trainers_outcome_is_killed(runs_dir):
    """train_end is written before the final model is saved: without the trainer's outcome it died saving."""
    rd = hand_run(runs_dir, phase="saving")
    rd.metrics_path.write_text('{"event": "train_begin", "step": 0}\n{"event": "train_end", "step": 3}\n')
    st = supervisor.status(rd)
    assert st["state"] == "killed" and "disappeared" in st["error"]


def test_settle_dead_runner_with_stop_request_is_stopped(runs_dir):
    rd = hand_run(runs_dir)
    supervisor.request_stop(rd)
    st = supervisor.status(rd)
    assert st["state"] == "stopped" and not st.get("error")


def test_settle_after_reboot_is_lost(runs_dir):
    bt = boot_time()
    if bt is None:
        pytest.skip("no /proc/stat boot time")
    rd = hand_run(runs_dir, boot_time=bt - 3600)
    rd.touch_heartbeat()
    st = supervisor.status(rd)
    assert st["state"] == "lost" and "restarted" in st["error"]


def test_no_settling_for_live_or_foreign_runs(runs_dir):
    fresh = hand_run(runs_dir, "fresh", state="queued", created=time.time())
    assert supervisor.status(fresh)["state"] == "queued"  # the runner may not have started yet
    other = hand_run(runs_dir, "other", host="some-other-host")
    assert supervisor.status(other)["state"] == "running"  # cannot see another machine's processes
    live = hand_run(runs_dir, "live")
    runner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "workbench.core.runner",
                               str(live.path)])
    try:
        live.write_status(runner_pid=runner.pid)
        assert supervisor.status(live)["state"] == "running"  # its runner lives
    finally:
        runner.kill()
        runner.wait()
    assert supervisor.status(live)["state"] == "killed"  # and once it is gone, the run is settled
    stopping = hand_run(runs_dir, "stopping", runner_pid=None, runnerless=True)  # a Slurm job, heartbeat fresh
    stopping.touch_heartbeat()
    supervisor.request_stop(stopping)
    assert supervisor.status(stopping)["display_state"] == "stopping"


def test_stop_of_finished_run_does_nothing(runs_dir):
    rd = hand_run(runs_dir, state="completed", exit_code=0)
    phases: list[str] = []
    st = supervisor.stop(rd, grace=0.1, term_grace=0.1, on_phase=phases.append)
    assert st["state"] == "completed" and phases == []
    assert not rd.stop_request_path.exists()


# -- finding runs --------------------------------------------------------------------------------------------
def test_find_run(runs_dir, tmp_path):
    with pytest.raises(BadInput) as e:
        supervisor.find_run(runs_dir, "last")
    assert "no run 'last'" in str(e.value)
    a = hand_run(runs_dir, "alpha", state="completed", created=1000.0)
    b = hand_run(runs_dir, "beta", state="failed", created=2000.0)
    (runs_dir / "not-a-run").mkdir()  # no status.json: ignored
    (runs_dir / "stray.txt").write_text("x")
    assert [rd.id for rd, _ in supervisor.list_runs(runs_dir)] == sorted([a.id, b.id], reverse=True)  # newest first
    assert supervisor.find_run(runs_dir, a.id).path == a.path
    assert supervisor.find_run(runs_dir, "last").path == b.path
    assert supervisor.find_run(runs_dir, "beta").path == b.path  # unique part of the name
    assert supervisor.find_run(runs_dir, str(a.path)).path == a.path  # a path works too
    assert supervisor.find_run(runs_dir, b.id[:-2]).path == b.path  # unique prefix ("...-be")
    with pytest.raises(BadInput) as e:
        supervisor.find_run(runs_dir, a.id[:8])  # both start with the same date
    assert "matches 2 runs" in str(e.value)
    with pytest.raises(BadInput) as e:
        supervisor.find_run(runs_dir, "gamma")
    assert "no run 'gamma'" in str(e.value)
    with pytest.raises(BadInput):
        supervisor.find_run(tmp_path / "no-such-dir", "alpha")


def test_launch_into_unwritable_runs_dir_is_bad_input(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(BadInput) as e:
        supervisor.launch(recipe_for("succeed"), blocker / "runs")
    assert "cannot create a run directory" in str(e.value)


def test_stop_never_signals_a_run_on_another_host(runs_dir):
    """A shared runs dir (NFS home): the pgid recorded by another machine is some other process group here."""
    bystander = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        rd = hand_run(runs_dir, "remote", host="gpu-node-7", runner_pid=bystander.pid, pgid=bystander.pid)
        phases: list[str] = []
        st = supervisor.stop(rd, grace=0.3, term_grace=0.3, on_phase=phases.append)
        assert alive(bystander.pid), "stop() signalled a local process group for a run on another host"
        assert st["state"] == "running"  # not falsely recorded as stopped: it still runs over there
        assert rd.stop_request_path.exists()  # the request reaches the other host through the shared folder
        assert any("gpu-node-7" in p for p in phases) and not any("SIG" in p for p in phases)
    finally:
        bystander.kill()
        bystander.wait()


def test_concurrent_status_updates_are_not_lost(runs_dir):
    """Launcher, runner and trainer update status.json at the same time; every key written must survive."""
    rd = RunDir.create(runs_dir, "race")
    rd.write_status(state="queued")
    code = ("import sys\nfrom workbench.core.rundir import RunDir\nrd = RunDir(sys.argv[1])\n"
            "for i in range(40):\n    rd.write_status(**{f'{sys.argv[2]}_{i}': i})\n")
    writers = [subprocess.Popen([sys.executable, "-c", code, str(rd.path), name]) for name in ("a", "b", "c")]
    assert [w.wait(timeout=60) for w in writers] == [0, 0, 0]
    st = rd.read_status()
    missing = [f"{n}_{i}" for n in "abc" for i in range(40) if f"{n}_{i}" not in st]
    assert not missing, f"{len(missing)} updates lost"
    assert st["state"] == "queued"


def test_resume_needs_a_checkpoint_and_a_finished_run(launch_fake, runs_dir):
    import subprocess

    from tests.conftest import workbench_cmd

    got = launch_fake("crash")
    got.process.wait(timeout=20)
    proc = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "resume", got.run.id), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "has no complete checkpoint to resume from" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert supervisor.status(got.run)["state"] == "failed", "nothing changed"
