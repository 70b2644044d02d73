"""The queue process: a small light process that starts the queue's waiting runs in order, and exits when the queue
is empty.

    python -m workbench.core.queue_runner QUEUE_DIR

Started by workbench.core.queue (``ensure_process``) in its own session, so closing the terminal, the TUI or the SSH
connection never reaches it (it ignores SIGHUP and SIGINT; SIGTERM ends it stopped, the waiting runs wait). Every
POLL_S, under the queue's lock (queue.json): the runs it started that ended leave ``active`` (with stop_on_error set,
one that ended failed, killed or lost halts the queue: stopped); then the first waiting run starts if
  - the machine has GPUs (NVML, workbench.core.gpus): the N it needs are free and not given to a live run of the
    queue (a trainer still loading has not touched its GPUs yet); it gets CUDA_VISIBLE_DEVICES with those indices;
  - the machine has none: no run of the queue is live (one at a time);
and so on down the order until one cannot start: a later run never overtakes the first (move it instead). A run is
moved to queued there (lifecycle.start_waiting) and its runner is started once the lock is released
(supervisor.start_queued). When nothing waits and no run of the queue is live, it ends completed. States: the queue
section of core/lifecycle.py.

Test seam (read here and nowhere else): WORKBENCH_TEST_FAKE_NVML=FILE makes NVML a stand-in (``JsonNvml``) that reads
FILE, a JSON list of GPUs {"name", "memory_used", "memory_total", "utilisation", "pids"}, at every call, so a test
makes a GPU busy or free by rewriting it. The runs' trainers come from their launch.json (made when they were
queued), so no trainer seam is needed here.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from workbench.core import gpus, lifecycle, supervisor
from workbench.core.problems import BadInput
from workbench.core.queue import RECENT_KEPT, QueueDir, pick_gpus
from workbench.core.rundir import HEARTBEAT_EVERY, LIVE_STATES, RunDir, boot_time, hostname

TEST_NVML_ENV = "WORKBENCH_TEST_FAKE_NVML"
POLL_S = 0.5
FAILURES = (lifecycle.FAILED, lifecycle.KILLED, lifecycle.LOST)


def main(queue_dir: str) -> int:
    qd = QueueDir(queue_dir)
    _use_fake_nvml_if_testing()
    terminated = False

    def on_term(signum, frame):
        nonlocal terminated
        terminated = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    started = time.time()
    if lifecycle.try_queue_transition(qd, lifecycle.RUNNING, lifecycle.QUEUE_PROCESS, runner_pid=os.getpid(),
                                      host=hostname(), boot_time=boot_time(), started=started) is None:
        return 1  # settled before we got here
    qd.touch_heartbeat()
    say(f"queue process {os.getpid()} started")
    children, beat = [], time.monotonic()
    try:
        adopt_strays(qd)
        while True:
            children = [p for p in children if p.poll() is None]  # reap the runners we started
            if not qd.status_path.exists():
                say("the queue directory is gone: nothing can record the queue any more")
                return 1
            if terminated:
                lifecycle.queue_finished(qd, lifecycle.STOPPED, started, "stopped by SIGTERM; the waiting runs wait "
                                         "(workbench queue resume goes on)")
                break
            poll = plan(qd, gpus.snapshot())
            for rd, env in poll.starts:
                try:
                    children.append(supervisor.start_queued(rd, env).process)
                    say(f"run {rd.id} started" + (f" on GPU {env['CUDA_VISIBLE_DEVICES']}" if env else ""))
                except BadInput as e:  # already recorded failed in its status; the next poll sees it ended
                    say(f"run {rd.id} could not start: {e.problems[0].message}")
            if poll.halt:
                lifecycle.queue_finished(qd, lifecycle.STOPPED, started, poll.halt)
                say(poll.halt)
                break
            if poll.empty and not poll.starts and lifecycle.queue_finished(qd, lifecycle.COMPLETED, started):
                say("the queue is empty")
                break
            if time.monotonic() - beat >= HEARTBEAT_EVERY:
                qd.touch_heartbeat()
                beat = time.monotonic()
            time.sleep(POLL_S)
    except Exception as e:  # noqa: BLE001 - recorded as the queue's failure, the waiting runs keep waiting
        traceback.print_exc()
        lifecycle.queue_finished(qd, lifecycle.FAILED, started, f"the queue process failed: {type(e).__name__}: {e}")
        return 1
    qd.touch_heartbeat()
    return 0


def say(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)


@dataclass
class Poll:
    starts: list[tuple[RunDir, dict | None]] = field(default_factory=list)  # queued now: start their runners
    halt: str | None = None  # stop-on-error: why the queue ends
    empty: bool = False  # nothing waits and no run of the queue is live


def plan(qd: QueueDir, snap: gpus.GpuSnapshot) -> Poll:
    """One poll's decisions, made under the queue's lock (see the module docstring)."""
    poll = Poll()

    def edit(status: dict) -> None:
        settings = status.get("settings") or {}
        live, claimed, recent = [], set(), list(status.get("recent") or [])
        for run_id in dict.fromkeys(status.get("active") or []):
            rd = RunDir(qd.runs_dir / run_id)
            st = supervisor.status(rd) if rd.exists() else {}
            state = st.get("state") or "deleted"
            if state in LIVE_STATES:
                live.append(run_id)
                claimed.update(int(i) for i in st.get("gpus") or [])
                continue
            recent = [{"run": run_id, "state": state, "ended": st.get("ended")}, *recent][:RECENT_KEPT]
            say(f"run {run_id} {state}")
            if state in FAILURES and settings.get("stop_on_error") and poll.halt is None:
                poll.halt = (f"run {run_id} {state}: stop-on-error halts the queue; the waiting runs wait "
                             "(workbench queue resume goes on)")
        order = [r for r in dict.fromkeys(status.get("order") or [])
                 if RunDir(qd.runs_dir / r).read_status().get("state") == lifecycle.WAITING]
        blocked = None
        for run_id in [] if poll.halt else list(order):
            rd = RunDir(qd.runs_dir / run_id)
            need = int(rd.read_status().get("gpus_needed") or 0)
            if snap.available and need > len(snap.gpus):
                lifecycle.fail_waiting(rd, lifecycle.QUEUE_PROCESS, f"it needs {need} GPUs; this machine has "
                                                                    f"{len(snap.gpus)}")
                order.remove(run_id)
                continue
            if snap.available:
                free = [i for i in snap.free_indices() if i not in claimed]
                given = pick_gpus(free, [g.index for g in snap.gpus], need)
                if given is None:
                    blocked = {"run": run_id, "why": f"waits for {need} free GPU{'s' if need > 1 else ''} "
                                                     f"({len(free)} free)"}
                    break
            elif live:
                blocked = {"run": run_id, "why": f"waits for run {live[0]} to end (no GPUs here: one at a time)"}
                break
            else:
                given = []
            if _start(rd, given):
                live.append(run_id)
                claimed.update(given)
                poll.starts.append((rd, {"CUDA_VISIBLE_DEVICES": ",".join(map(str, given))} if given else None))
            order.remove(run_id)
        status.update(order=order, active=live, recent=recent)
        if blocked:
            status["blocked"] = blocked
        else:
            status.pop("blocked", None)
        poll.empty = not order and not live

    qd.locked(edit)
    return poll


def _start(rd: RunDir, given: list[int]) -> bool:
    """waiting -> queued, after checking its sealed code; False if it failed that or left the queue meanwhile."""
    from workbench.core import trust

    try:
        trust.verify_run(rd.path)
    except BadInput as e:
        lifecycle.fail_waiting(rd, lifecycle.QUEUE_PROCESS, "; ".join(p.message for p in e.problems))
        return False
    try:
        lifecycle.start_waiting(rd, lifecycle.QUEUE_PROCESS, given)
    except lifecycle.TransitionRefused:
        return False
    return True


def adopt_strays(qd: QueueDir) -> None:
    """Waiting runs missing from the order (their launcher died between the two writes) join its end."""
    strays = []
    for p in sorted(qd.runs_dir.iterdir()):
        st = RunDir(p).read_status() if p.is_dir() and p != qd.path else {}
        if st.get("state") == lifecycle.WAITING and st.get("queue"):
            strays.append((st.get("enqueued") or 0, p.name))
    if strays:
        qd.locked(lambda status: status.update(order=list(dict.fromkeys(
            [*(status.get("order") or []), *(name for _, name in sorted(strays))]))))


class JsonNvml:
    """The NVML functions gpus.snapshot calls, answered from a JSON file read at every call (the test seam)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def _gpus(self) -> list[dict]:
        return json.loads(self.path.read_text())

    def nvmlDeviceGetCount(self) -> int:
        return len(self._gpus())

    def nvmlDeviceGetHandleByIndex(self, i: int) -> dict:
        return self._gpus()[i]

    def nvmlDeviceGetName(self, h: dict) -> str:
        return h.get("name", "stand-in GPU")

    def nvmlDeviceGetMemoryInfo(self, h: dict):
        return SimpleNamespace(used=int(h.get("memory_used", 0)), total=int(h.get("memory_total", 80 * 2**30)))

    def nvmlDeviceGetUtilizationRates(self, h: dict):
        return SimpleNamespace(gpu=int(h.get("utilisation", 0)))

    def nvmlDeviceGetComputeRunningProcesses(self, h: dict):
        return [SimpleNamespace(pid=pid, usedGpuMemory=0) for pid in h.get("pids", [])]


def _use_fake_nvml_if_testing() -> None:
    """The test seam of the module docstring."""
    path = os.environ.get(TEST_NVML_ENV)
    if path:
        gpus.use_nvml(JsonNvml(path))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
