"""The runner: a small light process that owns one run's process tree and records how it ended.

    python -m workbench.core.runner RUN_DIR

Started by ``supervisor.launch`` in its own session (so closing the terminal, the TUI or the SSH connection
never reaches it). It starts the trainer argv from launch.json in the same process group, stdout/stderr to
stdout.log, touches the heartbeat while the tree lives, and when the trainer exits hands the exit code to
``lifecycle.runner_finished``, which decides the final state (the table in docs/design.md). If the run directory
disappears under a live trainer (deleted or moved), it kills the trainer's tree: nothing could record the run.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from workbench.core import lifecycle
from workbench.core.atomic import read_json
from workbench.core.rundir import HEARTBEAT_EVERY, RunDir, boot_time, hostname

def main(run_dir: str) -> int:
    rd = RunDir(run_dir)
    launch = read_json(rd.launch_path, {})
    terminated = False

    def on_term(signum, frame):
        nonlocal terminated
        terminated = True  # the trainer is in our process group and got the same signal

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    env = {**os.environ, **launch.get("env", {})}
    started = time.time()
    if lifecycle.try_transition(rd, lifecycle.RUNNING, lifecycle.RUNNER, runner_pid=os.getpid(),
                                pgid=os.getpgid(0), host=hostname(), boot_time=boot_time(), started=started) is None:
        return 1  # settled or stopped before we got here: nothing to run
    rd.touch_heartbeat()
    with open(rd.stdout_path, "ab", buffering=0) as log:
        try:
            child = subprocess.Popen(launch["argv"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, cwd=launch.get("cwd") or None)
        except OSError as e:
            lifecycle.try_transition(rd, lifecycle.FAILED, lifecycle.RUNNER, ended=time.time(), exit_code=None,
                                     error=f"could not start the trainer: {e}")
            return 1
        rd.write_status(trainer_pid=child.pid)
        while True:
            try:
                rc = child.wait(timeout=HEARTBEAT_EVERY)
                break
            except subprocess.TimeoutExpired:
                if not rd.status_path.exists():
                    _end_deleted_run(child)
                    return 1
                _beat(rd)
    if not rd.status_path.exists():
        return 1  # deleted as the trainer ended: nothing to record to
    lifecycle.runner_finished(rd, rc, terminated, started)
    _beat(rd)
    return 0


def _beat(rd: RunDir) -> None:
    try:
        rd.touch_heartbeat()
    except OSError:
        pass  # a full disk: the heartbeat is only a hint, and the exit code still has to be recorded


def _end_deleted_run(child: subprocess.Popen) -> None:
    """The run directory was deleted (or moved) under the live run: nothing can record it any more, so nothing of
    it may go on training. SIGKILL to every other process of our group (the trainer and its workers)."""
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
