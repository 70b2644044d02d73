"""The one owner of run states and their transitions, and of pipeline states (the last section). Light: no torch,
no UI.

Every ``state`` written to a run's status.json goes through ``transition`` (a test checks that no other module
writes one). The other processes report *evidence* and this module decides:

  the launcher    creates the run (prepared, or queued right before it starts the runner) and re-queues it
                  for ``start`` (a prepared run) and ``resume`` (a stopped/failed/killed/lost one)
  the runner      marks it running when it starts the trainer, and decides the final state from the exit
                  code plus the trainer's evidence when the trainer exits (``runner_finished``)
  the trainer     reports ``phase`` (loading, training, saving, done), ``outcome`` (completed, stopped,
                  failed), ``error`` and lifecycle events in metrics.jsonl; it writes a state itself only for a
                  run without a runner (Slurm: prepared -> running at its start)
  any reader      settles a live state whose processes are gone (``status``), and a runner-less run by its
                  trainer's outcome or by heartbeat age

"Alive" is: the runner's pid, or any process of the run's process group (or of its vLLM server's group,
``vllm_pgid``), whose command line or environment names this run directory (so a reused pid never counts). A run
with ``machine_rank > 0`` is a *member* of a multi-node run: it trains, writes its own lifecycle events and
outcome, and ends with its own state; the rank-0 machine holds the metrics, samples and the final model.

A pipeline (runs/pipelines/<id>/) has states of its own, written by its launcher, its pipeline runner and readers;
see the pipeline section. Its stages are ordinary runs and keep the run states above.
The run queue (RUNS_DIR/queue/) adds the run state ``waiting`` and has a queue process with states of its own; see
the queue section at the end.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from workbench.core.rundir import UNSET, RunDir, boot_time, hostname

PREPARED, QUEUED, RUNNING = "prepared", "queued", "running"
COMPLETED, FAILED, STOPPED, KILLED, LOST = "completed", "failed", "stopped", "killed", "lost"
FINAL_STATES = (COMPLETED, FAILED, STOPPED, KILLED, LOST)
LIVE_STATES = (QUEUED, RUNNING)
RESUMABLE = (FAILED, STOPPED, KILLED, LOST)

LAUNCHER, RUNNER, TRAINER, READER = "launcher", "runner", "trainer", "reader"

# (from, to) -> who may write it. None = no status yet.
TRANSITIONS: dict[tuple[str | None, str], frozenset[str]] = {
    (None, PREPARED): frozenset({LAUNCHER}),
    (None, QUEUED): frozenset({LAUNCHER}),
    (PREPARED, QUEUED): frozenset({LAUNCHER}),  # workbench start
    (PREPARED, RUNNING): frozenset({TRAINER}),  # a runner-less (sbatch) run begins
    (QUEUED, RUNNING): frozenset({RUNNER}),
    **{(QUEUED, s): frozenset({RUNNER, READER}) for s in FINAL_STATES},  # could not start / runner died early
    **{(RUNNING, s): frozenset({RUNNER, READER}) for s in FINAL_STATES},
    **{(s, QUEUED): frozenset({LAUNCHER}) for s in RESUMABLE},  # workbench resume
    (LOST, KILLED): frozenset({READER}),
}

QUEUED_GRACE_S = 10.0  # a queued run whose runner never appears within this is settled
RUNNERLESS_LOST_AFTER_S = 120.0  # a Slurm run whose heartbeat is this old (preempted, node lost) is settled
SAVE_GRACE_S = 900.0  # a stop never escalates past a trainer that reports it is saving, for this long
OOM_HINT = ("out of memory: lower per_device_train_batch_size or max length, use LoRA ([peft] method = \"lora\"), "
            "or a higher DeepSpeed ZeRO stage")


class TransitionRefused(Exception):
    pass


def transition(rd: RunDir, to: str, by: str, **fields) -> dict:
    """Write state ``to`` (and fields) if the table allows ``by`` to take the run there from its current state.

    Raises TransitionRefused otherwise (e.g. a runner late to mark 'running' after a reader settled 'killed').
    """
    return _move(rd, TRANSITIONS, "run", to, by, fields)


def _move(d, table: dict, what: str, to: str, by: str, fields: dict) -> dict:
    def check(current: dict) -> None:
        allowed = table.get((current.get("state"), to), frozenset())
        if by not in allowed:
            raise TransitionRefused(f"{by} may not move {what} {d.id} from {current.get('state')} to {to}")

    return d.update_status(check, state=to, **fields)


def try_transition(rd: RunDir, to: str, by: str, **fields) -> dict | None:
    try:
        return transition(rd, to, by, **fields)
    except TransitionRefused:
        return None


# -- liveness ---------------------------------------------------------------------------------------------------
def _names_run(pid: int, run_path: str) -> bool:
    """Whether a live, non-zombie process's command line or environment names this run directory."""
    proc = Path(f"/proc/{pid}")
    needles = {run_path.encode(), os.path.abspath(run_path).encode()}
    try:
        stat = (proc / "stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return False
        cmdline = (proc / "cmdline").read_bytes()
        if any(n in cmdline for n in needles):
            return True
        environ = b"\0" + (proc / "environ").read_bytes() + b"\0"
        return any(b"\0WORKBENCH_RUN_DIR=" + n + b"\0" in environ for n in needles)
    except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
        return False


def _group_members(pgid: int) -> list[int]:
    out = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return out
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 3 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            out.append(int(name))
    return out


def processes(rd: RunDir, st: dict | None = None, server: bool = True) -> list[int]:
    """The live processes of this run on this machine: the runner and every member of its process group, and of
    its vLLM server's group unless ``server`` is False."""
    st = rd.read_status() if st is None else st
    if st.get("host") not in (None, hostname()):
        return []
    path = str(rd.path)
    pids = set()
    for key in ("runner_pid", "trainer_pid"):
        pid = st.get(key)
        if pid and _names_run(int(pid), path):
            pids.add(int(pid))
    for key in ("pgid", "vllm_pgid") if server else ("pgid",):  # the vLLM server's own group (core/vllm_server.py)
        pgid = st.get(key)
        if pgid:
            pids.update(p for p in _group_members(int(pgid)) if _names_run(p, path))
    return sorted(pids)


def runner_alive(rd: RunDir, st: dict) -> bool:
    pid = st.get("runner_pid")
    return bool(pid) and _names_run(int(pid), str(rd.path))


# -- evidence -> final state ------------------------------------------------------------------------------------
def last_log_line(rd: RunDir) -> str:
    try:
        with open(rd.stdout_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            lines = [ln.strip() for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
    except FileNotFoundError:
        return ""
    return lines[-1] if lines else ""


def judge(rd: RunDir, st: dict, rc: int | None, terminated: bool = False) -> dict:
    """The final state from the exit code (None: unknown, nobody waited) and the trainer's own evidence:
    its reported outcome and the train_end event of the latest attempt."""
    outcome = st.get("outcome")
    ended = rd.has_event("train_end")
    stop = rd.stop_requested() or terminated
    out: dict = {"exit_code": rc}
    if rc is not None and rc < 0:
        name = signal.Signals(-rc).name if -rc in signal.Signals._value2member_map_ else str(-rc)
        out["signal"] = name
        if outcome in (COMPLETED, STOPPED) and ended:
            out["state"] = outcome
        elif stop:
            out["state"] = STOPPED
        else:
            out["state"] = KILLED
            out["error"] = f"killed by {name}" + (" (often the out-of-memory killer)" if name == "SIGKILL" else "")
    elif outcome in (COMPLETED, STOPPED) and ended:
        out["state"] = outcome
        if rc:
            out["note"] = f"exit code {rc} after training ended (abort at interpreter exit); results are complete"
    elif outcome == FAILED:
        out["state"] = FAILED
        out["error"] = st.get("error") or last_log_line(rd) or f"exit code {rc}"
    elif outcome == STOPPED:  # a SIGTERM while loading: stopped before training began, so no train_end
        out["state"] = STOPPED
    elif stop:
        out["state"] = STOPPED
    elif rc is None:
        out["state"] = KILLED
        out["error"] = "the run's processes disappeared without finishing (SIGKILL?)"
    elif rc == 0:
        out["state"] = FAILED
        out["error"] = "the trainer exited without finishing training"
    else:
        out["state"] = FAILED
        out["error"] = st.get("error") or last_log_line(rd) or f"exit code {rc}"
    err = (out.get("error") or "").lower()
    if "out of memory" in err or "outofmemory" in err:
        out["hint"] = OOM_HINT
    return out


def runner_could_not_start(rd: RunDir, error: str, started: float, stopped: bool = False) -> dict:
    """The runner's last word when the trainer never started (its vLLM server failed, or a stop came first)."""
    now = time.time()
    fields = {"note": error} if stopped else {"error": error, "exit_code": None}
    st = try_transition(rd, STOPPED if stopped else FAILED, RUNNER, ended=now, duration=round(now - started, 3),
                        **fields)
    return st or rd.read_status()


def runner_finished(rd: RunDir, rc: int, terminated: bool, started: float) -> dict:
    """The runner's last word: the trainer exited with rc."""
    end = judge(rd, rd.read_status(), rc, terminated)
    now = time.time()
    st = try_transition(rd, end.pop("state"), RUNNER, **end, ended=now, duration=round(now - started, 3))
    return st or rd.read_status()


# -- settling (any reader) --------------------------------------------------------------------------------------
def status(rd: RunDir) -> dict:
    """The run's status, settled, plus ``display_state`` (what a user should read: 'stopping', 'saving')."""
    st = rd.read_status()
    if st.get("state") in LIVE_STATES and not st.get("runnerless") and st.get("host") in (None, hostname()):
        if not _live(rd, st):
            st = settle(rd)
    elif st.get("state") in (PREPARED, RUNNING) and st.get("runnerless"):
        st = _settle_runnerless(rd, st)
    st["display_state"] = display_state(rd, st)
    return st


def _live(rd: RunDir, st: dict) -> bool:
    if st.get("state") == QUEUED and time.time() - float(st.get("queued_at") or st.get("created") or 0) \
            < QUEUED_GRACE_S:
        return True  # the launcher has not started the runner yet, or it is still starting
    if runner_alive(rd, st):
        return True
    live = processes(rd, st)
    if live and st.get("vllm_pgid"):
        server = {p for p in _group_members(int(st["vllm_pgid"])) if _names_run(p, str(rd.path))}
        if set(live) <= server:  # only the vLLM server's processes are left: their runner and trainer are gone
            for pid in live:
                try:
                    os.kill(pid, signal.SIGKILL)  # a server nobody can use must not hold its GPUs
                except (ProcessLookupError, PermissionError):
                    pass
            return False
    return bool(live)


def settle(rd: RunDir) -> dict:
    """A live run with no process left: decide its final state from the evidence it left."""
    st = rd.read_status()
    if st.get("state") not in LIVE_STATES or _live(rd, st):
        return st
    bt = boot_time()
    rebooted = bt is not None and st.get("boot_time") is not None and bt > float(st["boot_time"]) + 1
    if rebooted and not (st.get("outcome") and rd.has_event("train_end")):
        hb = rd.heartbeat_age()
        end = {"state": LOST, "error": "the machine restarted while the run was live"
               + (f"; last heartbeat {hb:.0f} s ago" if hb is not None else "")}
    else:
        end = judge(rd, st, None)
        if end["state"] != KILLED:
            end.pop("exit_code", None)  # nobody saw the exit code; don't claim one
    state, now = end.pop("state"), time.time()
    try:
        return try_transition(rd, state, READER, **end, ended=now) or rd.read_status()
    except OSError:  # a full (or read-only) disk: show the settled state; a later reader writes it
        return {**st, **end, "state": state, "ended": now}


def _settle_runnerless(rd: RunDir, st: dict) -> dict:
    """A run started without a runner (sbatch): its trainer reports; a stale heartbeat means it is gone."""
    if st.get("state") == RUNNING and st.get("phase") == "done" and st.get("outcome"):
        end = judge(rd, st, st.get("exit_code"))
        end.pop("exit_code", None)
        return try_transition(rd, end.pop("state"), READER, **end, ended=time.time()) or rd.read_status()
    hb = rd.heartbeat_age()
    if st.get("state") == RUNNING and (hb is None or hb > RUNNERLESS_LOST_AFTER_S):
        age = f"{hb:.0f} s" if hb is not None else "ever"
        return try_transition(rd, LOST, READER, ended=time.time(),
                              error=f"no heartbeat for {age}: the job was preempted, cancelled or its node lost "
                                    "(resume it with `workbench resume`)") or rd.read_status()
    return st


def display_state(rd: RunDir, st: dict) -> str:
    state = st.get("state") or "?"
    if state == RUNNING:
        if st.get("phase") == "saving":
            return "saving"
        if rd.stop_requested():
            return "stopping"
    if state == STOPPED and st.get("cancelled"):
        return "cancelled"  # it waited in the queue and never ran
    return state


def saving(st: dict) -> bool:
    """The trainer says it is writing a checkpoint or the final model (escalation waits for it)."""
    since = st.get("saving_since")
    return st.get("phase") == "saving" and (since is None or time.time() - float(since) < SAVE_GRACE_S)


# -- checkpoints ------------------------------------------------------------------------------------------------
def checkpoint_complete(path: Path) -> bool:
    """The Trainer writes trainer_state.json last: a folder without it (or with a torn one) is half written."""
    import json

    try:
        state = json.loads((path / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(state, dict) and "global_step" in state


def resume_checkpoint(rd: RunDir) -> tuple[Path | None, list[Path]]:
    """The highest complete checkpoint, and the half-written ones above it that were skipped."""
    ckpts = [p for p in rd.checkpoints.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    skipped = []
    for p in sorted(ckpts, key=lambda p: -int(p.name.split("-")[-1])):
        if checkpoint_complete(p):
            return p, skipped
        skipped.append(p)
    return None, skipped


# -- members of a multi-node run --------------------------------------------------------------------------------
def member_info(launch: dict) -> dict:
    """Status fields of a machine in a multi-node run ([launch] num_machines > 1)."""
    machines = int(launch.get("num_machines", 1) or 1)
    if machines <= 1:
        return {}
    rank = int(launch.get("machine_rank", 0) or 0)
    return {"machine_rank": rank, "num_machines": machines, "role": "main" if rank == 0 else "member",
            "main_address": launch.get("main_address") or "127.0.0.1"}


def fresh_attempt_fields() -> dict:
    """Status keys of an attempt's end that a new attempt (start, resume) clears."""
    return dict.fromkeys(("outcome", "error", "error_type", "hint", "signal", "note", "exit_code", "ended",
                          "duration", "phase", "saving_since", "failed_at", "trainer_pid", "runner_pid", "vllm_pid",
                          "vllm_pgid", "vllm_port", "vllm_phase", "vllm_exit_code", "trainer_gpus"), UNSET)


def queued_fields() -> dict:
    return {"queued_at": time.time(), "host": hostname(), "boot_time": boot_time()}


# == pipelines ==================================================================================================
# A pipeline (runs/pipelines/<id>/, workbench.core.pipedir) is a supervised object with its own status.json. Its
# stages' runs keep the run states above: the pipeline runner starts, resumes and asks them to stop through the
# supervisor, and copies each run's final state into the stage's entry. Writers of a pipeline's state:
#   the launcher         queued (`workbench pipeline DIR`), and again for a failed/stopped/killed/lost one
#                        (`workbench pipeline-resume`); failed when the pipeline runner cannot be started
#   the pipeline runner  running when it starts; the final state after the last stage: completed when every
#                        stage's run completed, else the state the stage's run ended with (later stages are not
#                        started), failed when a stage could not be started, stopped when asked before a stage
#   any reader           settles a live pipeline whose runner is gone (``pipeline_status``): killed, lost after a
#                        reboot, stopped when a stop was pending; the stage's run it was waiting on is left alone
# Alive: the pipeline runner's pid, whose command line names the pipeline directory (a reused pid never counts).
PIPELINE_RUNNER = "pipeline runner"
PENDING = "pending"  # a stage entry whose run has not been started

PIPELINE_TRANSITIONS: dict[tuple[str | None, str], frozenset[str]] = {
    (None, QUEUED): frozenset({LAUNCHER}),
    (QUEUED, RUNNING): frozenset({PIPELINE_RUNNER}),
    **{(QUEUED, s): frozenset({LAUNCHER, PIPELINE_RUNNER, READER}) for s in FINAL_STATES},
    **{(RUNNING, s): frozenset({PIPELINE_RUNNER, READER}) for s in FINAL_STATES},
    **{(s, QUEUED): frozenset({LAUNCHER}) for s in RESUMABLE},  # workbench pipeline-resume
}


def pipeline_transition(pd, to: str, by: str, **fields) -> dict:
    """Write pipeline state ``to`` if PIPELINE_TRANSITIONS allows ``by`` to; TransitionRefused otherwise."""
    return _move(pd, PIPELINE_TRANSITIONS, "pipeline", to, by, fields)


def try_pipeline_transition(pd, to: str, by: str, **fields) -> dict | None:
    try:
        return pipeline_transition(pd, to, by, **fields)
    except TransitionRefused:
        return None


def record_stage(pd, step: int, **fields) -> dict:
    """The pipeline runner's note about stage ``step`` (1-based): its run id, the run's state, earlier runs.
    The stage becomes the pipeline's current one."""
    def edit(status: dict) -> None:
        entry = status["stages"][step - 1]
        entry.update(fields)
        status["stage"] = step
        status["run"] = entry.get("run")

    return pd.edit_status(edit)


def pipeline_alive(pd, st: dict) -> bool:
    pid = st.get("runner_pid")
    return bool(pid) and _names_run(int(pid), str(pd.path))


def pipeline_status(pd) -> dict:
    """The pipeline's status, settled, plus ``display_state`` ('stopping' while a stop request is pending)."""
    st = pd.read_status()
    if st.get("state") in LIVE_STATES and st.get("host") in (None, hostname()) and not _pipeline_live(pd, st):
        st = settle_pipeline(pd)
    state = st.get("state") or "?"
    st["display_state"] = "stopping" if state == RUNNING and pd.stop_requested() else state
    return st


def _pipeline_live(pd, st: dict) -> bool:
    if st.get("state") == QUEUED and time.time() - float(st.get("queued_at") or st.get("created") or 0) \
            < QUEUED_GRACE_S:
        return True  # the launcher has not started the pipeline runner yet
    return pipeline_alive(pd, st)


def settle_pipeline(pd) -> dict:
    """A live pipeline with no runner left. Its current stage's run is not touched: it may well go on."""
    st = pd.read_status()
    if st.get("state") not in LIVE_STATES or _pipeline_live(pd, st):
        return st
    bt = boot_time()
    step, run = st.get("stage"), st.get("run")
    where = f" at stage {step} (run {run}, which is not touched)" if run else ""
    if bt is not None and st.get("boot_time") is not None and bt > float(st["boot_time"]) + 1:
        end = {"state": LOST, "error": f"the machine restarted while the pipeline was live{where}"}
    elif pd.stop_requested():
        end = {"state": STOPPED}
    else:
        end = {"state": KILLED, "error": f"the pipeline process disappeared (SIGKILL?){where}; "
                                         f"`workbench pipeline-resume {pd.id}` waits for it and goes on"}
    return try_pipeline_transition(pd, end.pop("state"), READER, **end, ended=time.time()) or pd.read_status()


def pipeline_finished(pd, state: str, started: float, error: str | None = None) -> dict:
    """The pipeline runner's last word."""
    now = time.time()
    extra = {"error": error} if error else {}
    st = try_pipeline_transition(pd, state, PIPELINE_RUNNER, ended=now, duration=round(now - started, 3), **extra)
    return st or pd.read_status()


def fresh_pipeline_fields() -> dict:
    """Status keys of a pipeline attempt's end that pipeline-resume clears."""
    return dict.fromkeys(("error", "ended", "duration", "runner_pid", "started", "display_state"), UNSET)


# == the run queue ==============================================================================================
# `workbench run RECIPE --queue` (and the editor's Queue) prepares a run and puts it in the queue (RUNS_DIR/queue/,
# workbench.core.queue); a queue process (workbench.core.queue_runner, its own session) starts the waiting runs in
# order: when the GPUs a run needs are free, or, on a machine without GPUs, when the queue's run before it ended.
# Run states of the queue (the run table above gains these rows):
#   waiting    the launcher (prepared -> waiting) when it enqueues. A waiting run has no process by design: readers
#              never settle it, whether or not a queue process is alive
#   -> queued  the queue process when it starts it (then the run lives as any other run), or the launcher for
#              `workbench queue start-now`
#   -> stopped the launcher or the queue process: cancelled (the status records ``cancelled``, shown as such)
#   -> failed  the launcher or the queue process: it cannot start (its approved code changed, too few GPUs here)
# The queue process has states of its own, in RUNS_DIR/queue/queue.json (with the order of the waiting runs):
#   queued     the launcher, right before it starts a queue process (a run was enqueued and none was alive, or
#              `workbench queue resume`)
#   running    the queue process when it starts
#   completed  the queue process: nothing waits and no run it started is live any more; decided under the queue's
#              lock, so a run enqueued at that moment finds the queue ended and starts a new process
#   stopped    the queue process: a run it started ended failed/killed/lost and the queue's stop_on_error is set, or
#              it got SIGTERM; the waiting runs wait until `workbench queue resume`
#   failed     the launcher (the process cannot be started) or the queue process (an unexpected error)
#   killed, lost  any reader, once the queue process is gone (or the machine restarted); the waiting runs stay
#              waiting, and the next enqueue or `workbench queue resume` starts a new queue process
# Alive: the queue process's pid, whose command line names the queue directory.
WAITING = "waiting"
QUEUE_PROCESS = "queue process"

TRANSITIONS.update({
    (PREPARED, WAITING): frozenset({LAUNCHER}),
    (WAITING, QUEUED): frozenset({LAUNCHER, QUEUE_PROCESS}),
    (WAITING, STOPPED): frozenset({LAUNCHER, QUEUE_PROCESS}),
    (WAITING, FAILED): frozenset({LAUNCHER, QUEUE_PROCESS}),
})

QUEUE_TRANSITIONS: dict[tuple[str | None, str], frozenset[str]] = {
    **{(s, QUEUED): frozenset({LAUNCHER}) for s in (None, *FINAL_STATES)},
    (QUEUED, RUNNING): frozenset({QUEUE_PROCESS}),
    **{(QUEUED, s): frozenset({LAUNCHER, QUEUE_PROCESS, READER}) for s in (FAILED, KILLED, LOST)},
    **{(RUNNING, s): frozenset({QUEUE_PROCESS}) for s in (COMPLETED, STOPPED, FAILED)},
    **{(RUNNING, s): frozenset({READER}) for s in (KILLED, LOST)},
}


def queue_transition(qd, to: str, by: str, **fields) -> dict:
    """Write the queue process's state ``to`` if QUEUE_TRANSITIONS allows ``by`` to; TransitionRefused otherwise.
    ``completed`` is refused while a run waits or a run the queue started is live (the status's order / active)."""
    def check(current: dict) -> None:
        if by not in QUEUE_TRANSITIONS.get((current.get("state"), to), frozenset()):
            raise TransitionRefused(f"{by} may not move the queue from {current.get('state')} to {to}")
        if to == COMPLETED and (current.get("order") or current.get("active")):
            raise TransitionRefused("the queue is not empty")

    return qd.update_status(check, state=to, **fields)


def try_queue_transition(qd, to: str, by: str, **fields) -> dict | None:
    try:
        return queue_transition(qd, to, by, **fields)
    except TransitionRefused:
        return None


def queue_alive(qd, st: dict) -> bool:
    pid = st.get("runner_pid")
    return bool(pid) and _names_run(int(pid), str(qd.path))


def queue_status(qd) -> dict:
    """The queue process's status, settled when its process is gone. Its waiting runs are not touched."""
    st = qd.read_status()
    if st.get("state") in LIVE_STATES and st.get("host") in (None, hostname()) and not _queue_live(qd, st):
        bt = boot_time()
        if bt is not None and st.get("boot_time") is not None and bt > float(st["boot_time"]) + 1:
            end = {"state": LOST, "error": "the machine restarted while the queue process was live"}
        else:
            end = {"state": KILLED, "error": "the queue process disappeared (SIGKILL?); the waiting runs wait: "
                                             "`workbench queue resume` starts a new one"}
        st = try_queue_transition(qd, end.pop("state"), READER, **end, ended=time.time()) or qd.read_status()
    return st


def _queue_live(qd, st: dict) -> bool:
    if st.get("state") == QUEUED and time.time() - float(st.get("queued_at") or 0) < QUEUED_GRACE_S:
        return True  # the launcher has not started the queue process yet, or it is still starting
    return queue_alive(qd, st)


def queue_finished(qd, state: str, started: float, error: str | None = None) -> dict | None:
    """The queue process's last word; None when refused (``completed`` while the queue is not empty)."""
    now = time.time()
    extra = {"error": error} if error else {}
    return try_queue_transition(qd, state, QUEUE_PROCESS, ended=now, duration=round(now - started, 3), **extra)


def fresh_queue_fields() -> dict:
    """Status keys of an ended queue process that a new one clears."""
    return dict.fromkeys(("error", "ended", "duration", "runner_pid", "started", "blocked"), UNSET)


def start_waiting(rd: RunDir, by: str, gpus: list[int], **fields) -> dict:
    """waiting -> queued: the run leaves the queue and its runner is started next (``gpus``: the indices it is
    given in CUDA_VISIBLE_DEVICES, [] for none)."""
    return transition(rd, QUEUED, by, **queued_fields(), gpus=gpus, dequeued=time.time(), **fields)


def cancel_waiting(rd: RunDir, by: str) -> dict:
    """waiting -> stopped, as cancelled: it never ran."""
    now = time.time()
    return transition(rd, STOPPED, by, cancelled=now, ended=now, note="cancelled while waiting in the queue")


def fail_waiting(rd: RunDir, by: str, error: str) -> dict | None:
    return try_transition(rd, FAILED, by, ended=time.time(), error=error)
