"""The runner: a small light process that owns one run's process tree and records how it ended.

    python -m workbench.core.runner RUN_DIR

Started by ``supervisor.launch`` in its own session (so closing the terminal, the TUI or the SSH connection
never reaches it). It starts the trainer argv from launch.json in the same process group, stdout/stderr to
stdout.log, touches the heartbeat while the tree lives, and when the trainer exits hands the exit code to
``lifecycle.runner_finished``, which decides the final state (the table in docs/design.md). If the run directory
disappears under a live trainer (deleted or moved), it kills the trainer's tree: nothing could record the run.

A run in vLLM server mode (launch.json "vllm", workbench/core/vllm_server.py) has the runner start the server
first and wait for its /health; the trainer starts only once it answers, gets its port and the GPUs the server
does not use, and the server is taken down when the trainer exits, before the final state is recorded. A server
that exits early or never answers fails the run (a stop while it starts stops it), and nothing of it is left.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from workbench.core import lifecycle
from workbench.core.atomic import read_json
from workbench.core.exitwait import exit_event
from workbench.core.rundir import HEARTBEAT_EVERY, RunDir, boot_time, hostname


def main(run_dir: str) -> int:
    rd = RunDir(run_dir)
    launch = read_json(rd.launch_path, {})
    terminated = False

    child = None

    def on_term(signum, frame):
        nonlocal terminated
        terminated = True
        if child is not None and child.poll() is None:
            # A SIGTERM to the process group reached the trainer too; one to the runner alone is passed on, so
            # "terminated" always means the trainer was asked to stop (it checkpoints and ends, as for a request).
            try:
                child.send_signal(signal.SIGTERM)
            except OSError:
                pass

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    env = {**os.environ, **launch.get("env", {})}
    started = time.time()
    if lifecycle.try_transition(rd, lifecycle.RUNNING, lifecycle.RUNNER, runner_pid=os.getpid(),
                                pgid=os.getpgid(0), host=hostname(), boot_time=boot_time(), started=started) is None:
        return 1  # settled or stopped before we got here: nothing to run
    rd.touch_heartbeat()
    server = None
    if launch.get("vllm"):
        server = _start_server(rd, launch["vllm"], env, started, lambda: terminated)
        if server is None:
            return 1  # it never became ready: the run is settled, nothing of it is left
        env.update(server.trainer_env())
    with open(rd.stdout_path, "ab", buffering=0) as log:
        try:
            child = subprocess.Popen(launch["argv"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, cwd=launch.get("cwd") or None)
        except OSError as e:
            _stop_server(rd, server)
            lifecycle.try_transition(rd, lifecycle.FAILED, lifecycle.RUNNER, ended=time.time(), exit_code=None,
                                     error=f"could not start the trainer: {e}")
            return 1
        rd.write_status(trainer_pid=child.pid)
        exited = exit_event(child)  # blocks in waitpid: this loop wakes once a heartbeat, not every 50 ms
        while not exited.wait(HEARTBEAT_EVERY):
            if not rd.status_path.exists():
                _end_deleted_run(child, server)
                return 1
            _beat(rd)
        rc = child.returncode
    if not rd.status_path.exists():
        if server is not None:
            server.shutdown()
        return 1  # deleted as the trainer ended: nothing to record to
    died = server is not None and server.proc.poll() is not None  # the server went before the trainer did
    _stop_server(rd, server)
    st = _record_end(rd, rc, terminated, started)
    if died and st.get("state") == lifecycle.FAILED:
        rd.write_status(note=f"the vLLM server had exited (code {server.proc.returncode}) while the trainer ran; "
                             f"see {server.log}")
    _beat(rd)
    return 0


def _record_end(rd: RunDir, rc: int, terminated: bool, started: float, tries: int = 60) -> dict:
    """The final state, retried for a minute if the disk is full (the exit code is known only here)."""
    for attempt in range(tries):
        try:
            return lifecycle.runner_finished(rd, rc, terminated, started)
        except OSError:
            if attempt == tries - 1 or not rd.path.exists():
                return {}  # a reader settles it from the evidence later
            time.sleep(1.0)
    return {}


def _start_server(rd: RunDir, spec: dict, env: dict, started: float, terminated):
    """Start the run's vLLM server and wait for its /health; the Server, or None once the run is settled (the
    server failed to start, or a stop came first) with no process of it left."""
    from workbench.core import vllm_server

    gpus = vllm_server.visible_gpus(vllm_server.gpu_inventory()[0], env)
    if gpus:  # the trainer trains on the GPUs the server leaves (physical indices, as NVML numbers them)
        left = vllm_server.training_gpus(spec.get("gpus", []), gpus)
        if not left:
            lifecycle.runner_could_not_start(rd, f"no GPU left for the trainer: the vLLM server takes "
                                                 f"{spec.get('gpus')} of the visible {gpus}", started)
            return None
        env.update(CUDA_VISIBLE_DEVICES=",".join(map(str, left)), CUDA_DEVICE_ORDER="PCI_BUS_ID")
    try:
        server = vllm_server.Server.start(rd.path, spec, {k: v for k, v in env.items() if k != "CUDA_VISIBLE_DEVICES"})
    except OSError as e:
        lifecycle.runner_could_not_start(rd, f"could not start the vLLM server: {e}", started)
        return None
    rd.write_status(**server.status_fields(), vllm_phase="starting",
                    trainer_gpus=env.get("CUDA_VISIBLE_DEVICES", lifecycle.UNSET))

    def abort() -> str | None:
        if terminated() or rd.stop_requested():
            return "stopped while the vLLM server was starting"
        if not rd.status_path.exists():
            return "the run directory was deleted"
        return None

    outcome, why = server.wait_ready(float(spec.get("startup_timeout", vllm_server.STARTUP_TIMEOUT)), abort,
                                     lambda: _beat(rd) if rd.status_path.exists() else None)
    if outcome == "ready":
        rd.write_status(vllm_phase="ready")
        return server
    code = server.shutdown()
    if rd.status_path.exists():
        rd.write_status(vllm_phase="stopped", vllm_exit_code=code)
        lifecycle.runner_could_not_start(rd, why, started, stopped=outcome == "stopped")
    return None


def _stop_server(rd: RunDir, server) -> None:
    if server is None:
        return
    code = server.shutdown()
    try:
        rd.write_status(vllm_phase="stopped", vllm_exit_code=code)
    except OSError:
        pass  # a full disk: the server is gone all the same


def _beat(rd: RunDir) -> None:
    try:
        rd.touch_heartbeat()
    except OSError:
        pass  # a full disk: the heartbeat is only a hint, and the exit code still has to be recorded


def _end_deleted_run(child: subprocess.Popen, server=None) -> None:
    """The run directory was deleted (or moved) under the live run: nothing can record it any more, so nothing of
    it may go on training. SIGKILL to every other process of our group (the trainer and its workers) and to the
    vLLM server's group."""
    if server is not None:
        server.stop_grace = 0.0
        server.shutdown()
    me = os.getpid()
    for pid in lifecycle._group_members(os.getpgid(0)):
        if pid != me:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    child.wait()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
