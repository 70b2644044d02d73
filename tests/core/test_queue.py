"""The run queue (workbench.core.queue, .queue_runner, lifecycle's queue section): waiting runs start in order through
the real queue process and runners, one at a time without GPUs, when a stand-in GPU is free with GPUs (its index in
CUDA_VISIBLE_DEVICES); a failed run does not stop the queue unless stop-on-error; reorder, cancel, start-now; a
SIGKILLed queue process is settled and a new one picks the waiting runs up.

Real processes: the queue process, the runs' runners and the fake trainer (its launch.json argv, made when the run
was queued with supervisor.launch_plan replaced); NVML is the queue process's stand-in seam
(WORKBENCH_TEST_FAKE_NVML, a JSON file the test rewrites), an empty list for "no GPUs". No torch."""
from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.conftest import ASSETS
from tests.core.fakes import FAKE, wait_until
from workbench import cli
from workbench.core import gpus, lifecycle, queue, supervisor
from workbench.core.launch import LaunchPlan
from workbench.core.queue_runner import TEST_NVML_ENV, JsonNvml
from workbench.core.recipe import Recipe
from workbench.core.rundir import FINAL_STATES, RunDir

BUSY = {"name": "stand-in", "memory_used": 60 * 2**30, "memory_total": 80 * 2**30, "utilisation": 90}
FREE = {"name": "stand-in", "memory_used": 0, "memory_total": 80 * 2**30, "utilisation": 0}


def recipe(name: str, max_steps: int = 3, nproc: int = 1) -> Recipe:
    return Recipe.parse(f'[run]\nname = "{name}"\nstage = "grpo"\n\n[model]\npath = "builtin:tiny-lm"\n\n'
                        f'[data]\npath = "{ASSETS / "arith-prompts.jsonl"}"\n\n[rewards]\nfuncs = ["format"]\n\n'
                        f'[train]\nnum_generations = 4\nmax_steps = {max_steps}\n\n[launch]\nnum_processes = {nproc}\n')


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """The GPUs the queue process sees (a JSON list; [] = none) and the fake trainer mode per recipe name."""
    nvml = tmp_path / "gpus.json"
    monkeypatch.setenv(TEST_NVML_ENV, str(nvml))
    for key, value in (("FAKE_STEP_S", "0.05"), ("FAKE_SAVE_S", "0.02"), ("FAKE_LOAD_S", "0.02")):
        monkeypatch.setenv(key, value)
    modes: dict[str, str] = {}
    monkeypatch.setattr(supervisor, "launch_plan", lambda r, run_dir: LaunchPlan(
        [sys.executable, str(FAKE), modes.get(r.name, "steps"), str(run_dir)], {"WORKBENCH_RUN_DIR": str(run_dir)}))

    def use(gpu_list: list[dict], **mode_by_name: str) -> Path:
        nvml.write_text(json.dumps(gpu_list))
        modes.update(mode_by_name)
        return nvml
    return use


@pytest.fixture
def leave_nothing(runs_dir):
    """After the test, no queue process, runner or trainer of this runs directory is left alive."""
    procs: list = []
    yield procs
    qd = queue.QueueDir.of(runs_dir)
    st = qd.read_status()
    if lifecycle.queue_alive(qd, st):
        os.kill(int(st["runner_pid"]), signal.SIGKILL)
    for rd, st in supervisor.list_runs(runs_dir):
        for pid in lifecycle.processes(rd, st):
            os.kill(pid, signal.SIGKILL)
    for p in procs:
        if p is not None:
            p.wait(timeout=10)


def add(runs_dir: Path, procs: list, name: str, **kw) -> RunDir:
    got = queue.queue_recipe(recipe(name, **kw), runs_dir)
    procs.append(got.process)
    return got.run


def state(rd: RunDir) -> str:
    return supervisor.status(rd)["state"]


def wait_state(rd: RunDir, *states: str, timeout: float = 30.0) -> dict:
    wait_until(lambda: state(rd) in states, timeout, f"{rd.id} to be {'/'.join(states)}")
    return supervisor.status(rd)


def wait_queue_ended(runs_dir: Path, timeout: float = 30.0) -> dict:
    qd = queue.QueueDir.of(runs_dir)
    wait_until(lambda: lifecycle.queue_status(qd).get("state") in FINAL_STATES, timeout, "the queue process to end")
    return lifecycle.queue_status(qd)


def trainer_env(rd: RunDir) -> dict[str, str]:
    st = wait_until(lambda: rd.has_event("train_begin") and rd.read_status().get("trainer_pid") and rd.read_status(),
                    20, f"{rd.id} to train")
    raw = Path(f"/proc/{st['trainer_pid']}/environ").read_bytes()
    return dict(kv.split("=", 1) for kv in raw.decode(errors="replace").split("\0") if "=" in kv)


# -- the table -------------------------------------------------------------------------------------------------
def test_queue_states_and_who_may_write_them(runs_dir):
    rd = RunDir.create(runs_dir, "t")
    lifecycle.transition(rd, lifecycle.PREPARED, lifecycle.LAUNCHER)
    lifecycle.transition(rd, lifecycle.WAITING, lifecycle.LAUNCHER)
    with pytest.raises(lifecycle.TransitionRefused):
        lifecycle.transition(rd, lifecycle.KILLED, lifecycle.READER)  # a waiting run has no process by design
    with pytest.raises(lifecycle.TransitionRefused):
        lifecycle.transition(rd, lifecycle.RUNNING, lifecycle.RUNNER)  # it is started through queued
    assert supervisor.status(rd)["state"] == "waiting", "readers never settle a waiting run"
    lifecycle.cancel_waiting(rd, lifecycle.QUEUE_PROCESS)
    assert supervisor.status(rd)["display_state"] == "cancelled"

    qd = queue.QueueDir.of(runs_dir)
    qd.locked(lambda s: s.update(order=["x"]))
    lifecycle.queue_transition(qd, lifecycle.QUEUED, lifecycle.LAUNCHER)
    lifecycle.queue_transition(qd, lifecycle.RUNNING, lifecycle.QUEUE_PROCESS)
    assert lifecycle.queue_finished(qd, lifecycle.COMPLETED, 0.0) is None, "not while a run waits"
    qd.locked(lambda s: s.update(order=[]))
    assert lifecycle.queue_finished(qd, lifecycle.COMPLETED, 0.0)["state"] == "completed"
    with pytest.raises(lifecycle.TransitionRefused):
        lifecycle.queue_transition(qd, lifecycle.RUNNING, lifecycle.QUEUE_PROCESS)  # a new process needs queued


# -- order, one at a time, failures ----------------------------------------------------------------------------
def test_without_gpus_two_queued_runs_start_one_after_the_other(runs_dir, machine, leave_nothing):
    machine([])
    first = add(runs_dir, leave_nothing, "first", max_steps=20)  # about 1 s of training
    second = add(runs_dir, leave_nothing, "second")
    assert leave_nothing[0] is not None and leave_nothing[1] is None, "one queue process, started on demand"
    trainer_env(first)
    assert state(first) == "running" and state(second) == "waiting"
    assert queue.QueueDir.of(runs_dir).read_status()["blocked"]["run"] == second.id
    st = wait_queue_ended(runs_dir)
    assert st["state"] == "completed" and leave_nothing[0].wait(timeout=10) == 0, "it exits when the queue is empty"
    a, b = first.read_status(), second.read_status()
    assert a["state"] == b["state"] == "completed"
    assert b["started"] >= a["ended"], "the second started only after the first ended"
    assert a["gpus"] == b["gpus"] == [] and "CUDA_VISIBLE_DEVICES" not in supervisor.launch_info(first)["env"]


def test_a_failed_run_does_not_stop_the_queue_unless_stop_on_error(runs_dir, machine, leave_nothing):
    machine([], bad="crash")
    bad, good = add(runs_dir, leave_nothing, "bad"), add(runs_dir, leave_nothing, "good")
    assert wait_queue_ended(runs_dir)["state"] == "completed"
    assert state(bad) == "failed" and state(good) == "completed"
    assert [r["state"] for r in queue.QueueDir.of(runs_dir).read_status()["recent"][:2]] == ["completed", "failed"]

    queue.set_stop_on_error(runs_dir, True)
    bad, good = add(runs_dir, leave_nothing, "bad"), add(runs_dir, leave_nothing, "good")
    st = wait_queue_ended(runs_dir)
    assert st["state"] == "stopped" and f"run {bad.id} failed" in st["error"]
    assert state(good) == "waiting", "the halted queue leaves it waiting"
    third = add(runs_dir, leave_nothing, "third")
    assert leave_nothing[-1] is None, "a halted queue is not restarted by the next --queue"
    assert [rd.id for rd in queue.waiting_runs(runs_dir)] == [good.id, third.id]
    leave_nothing.append(queue.resume(runs_dir, stop_on_error=False))
    assert wait_queue_ended(runs_dir)["state"] == "completed"
    assert state(good) == "completed" and state(third) == "completed"


# -- GPUs ------------------------------------------------------------------------------------------------------
def test_a_queued_run_waits_for_a_busy_gpu_and_gets_the_free_one(runs_dir, machine, leave_nothing):
    nvml = machine([BUSY, BUSY])
    first = add(runs_dir, leave_nothing, "first", max_steps=20)
    second = add(runs_dir, leave_nothing, "second", max_steps=20)
    qd = queue.QueueDir.of(runs_dir)
    wait_until(lambda: qd.read_status().get("blocked"), 10, "the queue process to look at the GPUs")
    assert qd.read_status()["blocked"] == {"run": first.id, "why": "waits for 1 free GPU (0 free)"}
    assert state(first) == "waiting" and state(second) == "waiting"
    nvml.write_text(json.dumps([BUSY, FREE]))  # GPU 1 frees up
    assert trainer_env(first)["CUDA_VISIBLE_DEVICES"] == "1"
    assert first.read_status()["gpus"] == [1] and supervisor.launch_info(first)["env"]["CUDA_VISIBLE_DEVICES"] == "1"
    assert state(second) == "waiting", "GPU 1 is the first run's, though its trainer left it idle"
    wait_state(first, "completed")
    assert trainer_env(second)["CUDA_VISIBLE_DEVICES"] == "1"
    assert wait_queue_ended(runs_dir)["state"] == "completed"


# -- reorder, cancel, start-now (through the CLI) --------------------------------------------------------------
def test_reorder_cancel_and_start_now(runs_dir, machine, leave_nothing, tmp_path, capsys):
    machine([], hold="obey")  # 'obey' trains until asked to stop
    base = ["--runs-dir", str(runs_dir)]
    file = tmp_path / "hold.toml"
    recipe("hold").save(file)
    assert cli.main([*base, "run", str(file), "--queue"]) == 0
    assert "waits in the queue (#1)" in capsys.readouterr().out
    (hold,) = [rd for rd, _ in supervisor.list_runs(runs_dir)]
    trainer_env(hold)
    b, c, d = (add(runs_dir, leave_nothing, n) for n in ("b", "c", "d"))
    assert cli.main([*base, "queue", "move", d.id, "top"]) == 0
    assert cli.main([*base, "queue", "move", c.id, "up"]) == 0
    assert [rd.id for rd in queue.waiting_runs(runs_dir)] == [d.id, c.id, b.id]
    capsys.readouterr()
    assert cli.main([*base, "ls"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert [ln.split()[:3] for ln in lines[:3]] == [[d.id, "waiting", "#1"], [c.id, "waiting", "#2"],
                                                    [b.id, "waiting", "#3"]]
    assert lines[3].split()[:2] == [hold.id, "running"]

    assert cli.main([*base, "queue", "cancel", b.id]) == 0
    assert supervisor.status(b)["display_state"] == "cancelled" and not supervisor.latest_checkpoint(b)
    assert cli.main([*base, "queue", "cancel", b.id]) == 2, "no longer waiting"
    assert cli.main([*base, "queue", "start-now", c.id]) == 0, "whatever the queue's one-at-a-time"
    wait_state(c, "completed")
    assert state(hold) == "running" and state(d) == "waiting"
    capsys.readouterr()
    assert cli.main([*base, "queue"]) == 0
    out = capsys.readouterr().out
    assert "queue process: running" in out and f"waits for run {hold.id} to end" in out
    supervisor.request_stop(hold)
    wait_state(d, "completed")
    assert d.read_status()["started"] >= max(hold.read_status()["ended"], c.read_status()["ended"])
    assert state(hold) == "stopped" and wait_queue_ended(runs_dir)["state"] == "completed"


# -- the queue process killed ----------------------------------------------------------------------------------
def test_a_sigkilled_queue_process_is_settled_and_a_new_one_picks_the_waiting_runs_up(runs_dir, machine,
                                                                                      leave_nothing):
    machine([], hold="obey")
    hold = add(runs_dir, leave_nothing, "hold")
    after = add(runs_dir, leave_nothing, "after")
    trainer_env(hold)
    process = leave_nothing[0]
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=5)
    st = lifecycle.queue_status(queue.QueueDir.of(runs_dir))
    assert st["state"] == "killed" and "queue resume" in st["error"]
    assert state(after) == "waiting", "a waiting run is not settled as killed"
    assert state(hold) == "running", "the queue's live run goes on"
    last = add(runs_dir, leave_nothing, "last")  # the next --queue starts a new queue process
    assert leave_nothing[-1] is not None
    assert queue.QueueDir.of(runs_dir).read_status()["attempt"] == 2
    assert state(after) == "waiting", "the new process waits for the run the old one started"
    supervisor.request_stop(hold)
    wait_state(last, "completed")
    assert after.read_status()["started"] >= hold.read_status()["ended"]
    assert last.read_status()["started"] >= after.read_status()["ended"]
    assert wait_queue_ended(runs_dir)["state"] == "completed"


def test_start_now_takes_free_gpus_first_then_busy_ones(runs_dir, machine, monkeypatch):
    """In the launcher (no queue process involved): the stand-in NVML in-process."""
    nvml = machine([BUSY, FREE, BUSY])
    monkeypatch.setattr(gpus, "_nvml", JsonNvml(nvml))
    assert queue.pick_gpus([1], [0, 1, 2], 2) is None
    assert queue.pick_gpus([1], [0, 1, 2], 2, regardless=True) == [1, 0]
    assert queue.pick_gpus([], [0], 0) == []
    rd = supervisor.prepare(recipe("big", nproc=2), runs_dir)
    lifecycle.transition(rd, lifecycle.WAITING, lifecycle.LAUNCHER, gpus_needed=queue.gpus_needed(rd))
    monkeypatch.setattr(supervisor, "start_queued", lambda rd, env=None: env)
    assert queue.start_now(rd) == {"CUDA_VISIBLE_DEVICES": "1,0"}
    assert rd.read_status()["gpus"] == [1, 0] and rd.read_status()["state"] == "queued"
    assert queue.QueueDir.of(runs_dir).read_status()["active"] == [rd.id]
