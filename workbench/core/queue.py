"""The run queue: prepared runs that wait for the machine, started in order by a detached queue process. Shared by
the CLI and the TUI; no UI, no torch.

  RUNS_DIR/queue/
    queue.json   the queue process's state, pid, times and error (lifecycle's queue section), and the queue itself:
                 ``order`` (the waiting runs' ids, the first starts first), ``active`` (runs the queue started that
                 may still be live), ``settings`` ({"stop_on_error": bool}), ``blocked`` (why the first one waits),
                 ``recent`` (the last runs of the queue that ended). Every change is made under its lock, the queue
                 process's decisions included, so an enqueue, a move, a cancel or a start-now never races it. Not
                 named status.json: the runs list would take the folder for a run.
    queue.log    the queue process's output;  heartbeat  touched by it every few seconds

``queue_recipe`` prepares a run (supervisor.prepare: frozen recipe, launch.json, sealed code) and ``enqueue`` makes
it wait at the end of the order; a queue process (``python -m workbench.core.queue_runner QUEUE_DIR``, own session)
is started when none is alive, and exits when nothing waits and none of its runs is live. A run needs
[launch] num_processes GPUs of this machine (0 with [train] use_cpu = true); the queue process gives it
CUDA_VISIBLE_DEVICES with free ones (launch.json's env, and ``gpus`` in its status). Without GPUs it starts one run
at a time. ``move``, ``cancel`` and ``start_now`` (regardless of GPUs) act on a waiting run; ``arrange`` puts the
waiting runs first in the runs list, in queue order, shown as "waiting #N". States: lifecycle's queue section.
"""
from __future__ import annotations

import fcntl
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from workbench.core import lifecycle, supervisor
from workbench.core.atomic import write_json_atomic
from workbench.core.problems import BadInput, Problem
from workbench.core.rundir import LIVE_STATES, RunDir, StatusDir

QUEUE = "queue"  # the folder inside the runs directory
RECENT_KEPT = 10


class QueueDir(StatusDir):
    """The queue's directory (the layout above)."""

    status_path = property(lambda self: self.path / "queue.json")
    log_path = property(lambda self: self.path / "queue.log")
    runs_dir = property(lambda self: self.path.parent)

    @classmethod
    def of(cls, runs_dir: Path) -> "QueueDir":
        return cls(Path(runs_dir) / QUEUE)

    def locked(self, edit) -> dict:
        """``edit(status)`` under the queue's lock (the folder is made on first use)."""
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self.edit_status(edit)

    def edit_status(self, edit) -> dict:
        """StatusDir's locked edit (the same lock file), except that an edit changing nothing writes nothing: the
        queue process looks twice a second, for hours, and each write is fsynced."""
        with open(self.path / ".status.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            status = self.read_status()
            before = json.dumps(status, sort_keys=True)
            edit(status)
            if json.dumps(status, sort_keys=True) != before or not self.status_path.exists():
                write_json_atomic(self.status_path, status)
        return status


@dataclass
class Enqueued:
    run: RunDir
    position: int  # 1 = starts next
    process: subprocess.Popen | None  # a queue process started for it (reap it if this process lives on)


def gpus_needed(rd: RunDir) -> int:
    """GPUs of this machine the run needs: [launch] num_processes (per machine), 0 when [train] use_cpu is set."""
    import tomllib

    try:
        recipe = tomllib.loads(rd.recipe_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 1
    if recipe.get("train", {}).get("use_cpu") is True:
        return 0
    try:
        return max(0, int(recipe.get("launch", {}).get("num_processes", 1)))
    except (TypeError, ValueError):
        return 1


def pick_gpus(free: list[int], everything: list[int], need: int, regardless: bool = False) -> list[int] | None:
    """The GPU indices to give a run that needs ``need``: free ones; None when too few are free. ``regardless``
    (start-now): free ones first, then the others, as many as the machine has."""
    if need <= 0:
        return []
    if len(free) >= need:
        return free[:need]
    if not regardless:
        return None
    return (free + [i for i in everything if i not in free])[:need]


def claimed_gpus(status: dict, runs_dir: Path) -> set[int]:
    """GPUs given to the queue's live runs: busy even before their trainer has touched them."""
    out: set[int] = set()
    for run_id in status.get("active") or []:
        st = RunDir(Path(runs_dir) / run_id).read_status()
        if st.get("state") in LIVE_STATES:
            out.update(int(i) for i in st.get("gpus") or [])
    return out


# -- enqueue ---------------------------------------------------------------------------------------------------
def queue_recipe(recipe, runs_dir: Path, stop_on_error: bool | None = None) -> Enqueued:
    """Prepare a validated recipe as a run and put it at the end of the queue."""
    import shutil

    rd = supervisor.prepare(recipe, runs_dir)
    try:
        return enqueue(rd, stop_on_error)
    except BadInput:
        shutil.rmtree(rd.path, ignore_errors=True)
        raise


def enqueue(rd: RunDir, stop_on_error: bool | None = None) -> Enqueued:
    """A prepared run waits at the end of the queue; a queue process is started if none is alive (and the queue
    was not halted by a failure: then `workbench queue resume` goes on)."""
    st = supervisor.status(rd)
    if st.get("state") != lifecycle.PREPARED:
        raise BadInput(Problem(str(rd.path), "", f"run {rd.id} is {st.get('display_state')}, not prepared",
                               "only a prepared run (workbench prepare) can join the queue"))
    lifecycle.transition(rd, lifecycle.WAITING, lifecycle.LAUNCHER, queue=True, enqueued=time.time(),
                         gpus_needed=gpus_needed(rd))
    qd = QueueDir.of(rd.path.parent)

    def add(status: dict) -> None:
        status["order"] = [r for r in status.get("order") or [] if r != rd.id] + [rd.id]
        if stop_on_error is not None:
            status.setdefault("settings", {})["stop_on_error"] = stop_on_error

    position = len(qd.locked(add)["order"])
    return Enqueued(rd, position, ensure_process(qd))


def ensure_process(qd: QueueDir, resume: bool = False) -> subprocess.Popen | None:
    """Start a queue process unless one is alive (or starting). A queue halted by a failed run (stopped) is started
    again only for ``resume``."""
    st = lifecycle.queue_status(qd)
    if st.get("state") in LIVE_STATES or (st.get("state") == lifecycle.STOPPED and not resume):
        return None
    try:
        lifecycle.queue_transition(qd, lifecycle.QUEUED, lifecycle.LAUNCHER, **lifecycle.fresh_queue_fields(),
                                   **lifecycle.queued_fields(), attempt=int(st.get("attempt", 0)) + 1)
    except lifecycle.TransitionRefused:
        return None  # another launcher is starting one right now
    try:
        with open(qd.log_path, "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "workbench.core.queue_runner", str(qd.path.absolute())],
                                    start_new_session=True, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, close_fds=True)
    except OSError as e:
        lifecycle.try_queue_transition(qd, lifecycle.FAILED, lifecycle.LAUNCHER, ended=time.time(),
                                       error=f"cannot start the queue process: {e.strerror or e}")
        raise BadInput(Problem(str(qd.path), "", f"cannot start the queue process: {e.strerror or e}",
                               "check the machine"))
    qd.write_status(runner_pid=proc.pid)
    return proc


def resume(runs_dir: Path, stop_on_error: bool | None = None) -> subprocess.Popen | None:
    """Start a queue process for the waiting runs (after it was killed, or halted by a failure); None when one is
    alive already or nothing waits."""
    qd = QueueDir.of(runs_dir)
    if stop_on_error is not None:
        set_stop_on_error(runs_dir, stop_on_error)
    if not waiting_runs(runs_dir) and not qd.read_status().get("active"):
        return None
    return ensure_process(qd, resume=True)


def set_stop_on_error(runs_dir: Path, on: bool) -> None:
    QueueDir.of(runs_dir).locked(lambda status: status.setdefault("settings", {}).update(stop_on_error=on))


# -- the waiting runs ------------------------------------------------------------------------------------------
def waiting_runs(runs_dir: Path) -> list[RunDir]:
    """The waiting runs in queue order."""
    order = QueueDir.of(runs_dir).read_status().get("order") or []
    out = []
    for run_id in dict.fromkeys(order):
        rd = RunDir(Path(runs_dir) / run_id)
        if rd.read_status().get("state") == lifecycle.WAITING:
            out.append(rd)
    return out


def _waiting(rd: RunDir) -> None:
    st = supervisor.status(rd)
    if st.get("state") != lifecycle.WAITING:
        raise BadInput(Problem(str(rd.path), "", f"run {rd.id} is not waiting in the queue ({st.get('display_state')})",
                               "see `workbench queue`"))


def move(rd: RunDir, where: str) -> int:
    """Move a waiting run up, down, to the top or to the bottom of the queue; its new position (1 = next)."""
    _waiting(rd)
    qd = QueueDir.of(rd.path.parent)
    steps = {"up": -1, "down": 1}

    def edit(status: dict) -> None:
        order = [r for r in dict.fromkeys(status.get("order") or [])
                 if RunDir(qd.runs_dir / r).read_status().get("state") == lifecycle.WAITING]
        if rd.id not in order:
            raise BadInput(Problem(str(qd.path), "", f"run {rd.id} is not in the queue's order",
                                   f"cancel it (workbench queue cancel {rd.id}) and queue it again"))
        i = order.index(rd.id)
        order.pop(i)
        j = 0 if where == "top" else len(order) if where == "bottom" else min(max(i + steps[where], 0), len(order))
        order.insert(j, rd.id)
        status["order"] = order

    return qd.locked(edit)["order"].index(rd.id) + 1


def cancel(rd: RunDir) -> dict:
    """A waiting run leaves the queue without running (stopped, shown as cancelled)."""
    _waiting(rd)
    qd = QueueDir.of(rd.path.parent)

    def edit(status: dict) -> None:
        try:
            lifecycle.cancel_waiting(rd, lifecycle.LAUNCHER)
        except lifecycle.TransitionRefused:
            raise BadInput(Problem(str(rd.path), "", f"run {rd.id} has just left the queue "
                                   f"({rd.read_status().get('state')})", f"stop it: workbench stop {rd.id}"))
        status["order"] = [r for r in status.get("order") or [] if r != rd.id]

    qd.locked(edit)
    return supervisor.status(rd)


def start_now(rd: RunDir) -> supervisor.Launched:
    """Start a waiting run at once, whatever the GPUs: free ones first if it needs some, then busy ones."""
    from workbench.core import gpus, trust

    _waiting(rd)
    qd = QueueDir.of(rd.path.parent)
    need = int(rd.read_status().get("gpus_needed") or 0)
    snap = gpus.snapshot() if need else None
    given: list[int] = []

    def edit(status: dict) -> None:
        trust.verify_run(rd.path)  # the approved code copies must be as they were when it was queued
        if snap is not None and snap.available:
            claimed = claimed_gpus(status, qd.runs_dir)
            free = [i for i in snap.free_indices() if i not in claimed]
            given.extend(pick_gpus(free, [g.index for g in snap.gpus], need, regardless=True) or [])
        try:
            lifecycle.start_waiting(rd, lifecycle.LAUNCHER, given, started_now=True)
        except lifecycle.TransitionRefused:
            raise BadInput(Problem(str(rd.path), "", f"run {rd.id} has just left the queue "
                                   f"({rd.read_status().get('state')})", "see `workbench queue`"))
        status["order"] = [r for r in status.get("order") or [] if r != rd.id]
        status["active"] = [r for r in status.get("active") or [] if r != rd.id] + [rd.id]

    qd.locked(edit)
    return supervisor.start_queued(rd, {"CUDA_VISIBLE_DEVICES": ",".join(map(str, given))} if given else None)


# -- listing ---------------------------------------------------------------------------------------------------
def arrange(groups: list, runs_dir: Path) -> list:
    """The runs list's groups (workbench.core.pipeline.listing) with the waiting runs first, in queue order, each
    shown as "waiting #N"; the others keep their order."""
    waiting = [g for g in groups if g.pipeline is None and g.runs[0][1].get("state") == lifecycle.WAITING]
    if not waiting:
        return groups
    order = {run_id: i for i, run_id in enumerate(dict.fromkeys(
        QueueDir.of(runs_dir).read_status().get("order") or []))}
    waiting.sort(key=lambda g: (order.get(g.id, len(order)), g.runs[0][1].get("enqueued") or 0))
    for n, g in enumerate(waiting, 1):
        g.runs[0][1].update(display_state=f"waiting #{n}", queue_position=n)
    return waiting + [g for g in groups if g not in waiting]


@dataclass
class QueueView:
    """What `workbench queue` shows: the queue process's status, the queue's live runs and its waiting ones."""
    process: dict
    active: list[tuple[RunDir, dict]]
    waiting: list[tuple[RunDir, dict]]

    @property
    def stop_on_error(self) -> bool:
        return bool((self.process.get("settings") or {}).get("stop_on_error"))


def view(runs_dir: Path) -> QueueView:
    qd = QueueDir.of(runs_dir)
    st = lifecycle.queue_status(qd) if qd.exists() else {}
    active = [(rd, supervisor.status(rd)) for rd in (RunDir(Path(runs_dir) / r) for r in st.get("active") or [])
              if rd.exists()]
    return QueueView(st, [(rd, s) for rd, s in active if s.get("state") in LIVE_STATES],
                     [(rd, supervisor.status(rd)) for rd in waiting_runs(runs_dir)])


def process_line(st: dict) -> str:
    """One line about the queue process: 'running (pid 12)', 'not running: killed ...'."""
    state = st.get("state")
    if state is None:
        return "no queue process has run yet"
    if state in LIVE_STATES:
        return f"{state} (pid {st.get('runner_pid')})"
    why = {lifecycle.COMPLETED: "it ended when the queue emptied"}.get(state, st.get("error") or "")
    return f"not running: {state}" + (f" ({why})" if why else "")
