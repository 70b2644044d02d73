"""Waiting for a child process to exit without polling. Light: stdlib only.

``Popen.wait(timeout)`` is a busy loop that sleeps at most 50 ms between waitpid calls: a runner or a follower
waiting that way wakes ~20 times a second for the whole training, and on a 2-core machine every wakeup takes a
turn from the trainer's threads. ``exit_event(proc)`` blocks in waitpid on a daemon thread instead; waiting on
the Event with a timeout (a heartbeat, a progress line) sleeps until the timeout or the exit, whichever is first.
"""
from __future__ import annotations

import subprocess
import threading


def exit_event(proc: subprocess.Popen) -> threading.Event:
    """An Event set once ``proc`` has exited (and been reaped: ``proc.returncode`` is set)."""
    done = threading.Event()

    def wait() -> None:
        try:
            proc.wait()
        finally:
            done.set()

    threading.Thread(target=wait, name=f"exit-wait-{proc.pid}", daemon=True).start()
    return done
