"""The TUI (the real `workbench` on a pseudo-terminal) starts a prepared run from its list, watches it in the
monitor, and is then killed: SIGKILL, SIGTERM, SIGINT, or its terminal closed (the kernel's SIGHUP). The run
never notices: it trains on to completed, and nothing of the TUI or the run is left behind.

A pty of our own rather than tmux, so the test needs nothing installed and never skips.
"""
from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time

import pytest

from tests.core.fakes import alive

pytestmark = pytest.mark.e2e

ANSI = re.compile(rb"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[P^_][^\x1b]*\x1b\\|[()][0-9A-Za-z]|[=>78DEHMcNO])")


class Terminal:
    """A pty running one command as the session leader with the pty as its controlling terminal."""

    def __init__(self, argv: list[str], rows: int = 30, cols: int = 100):
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "HF_HUB_OFFLINE": "1"}
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
                                     preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0), close_fds=True)
        os.close(slave)
        self.out = bytearray()
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                try:
                    data = os.read(self.master, 65536)
                except OSError:
                    return
                if not data:
                    return
                self.out += data

    def text(self) -> str:
        return ANSI.sub(b"", bytes(self.out)).decode(errors="replace")

    def wait_for(self, needle: str, timeout: float = 40.0, since: int = 0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in ANSI.sub(b"", bytes(self.out[since:])).decode(errors="replace"):
                return
            assert self.proc.poll() is None, f"the TUI exited ({self.proc.returncode}):\n{self.text()[-8000:]}"
            time.sleep(0.1)
        raise AssertionError(f"{needle!r} not on screen after {timeout:.0f} s:\n{self.text()[-8000:]}")

    def send(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def hang_up(self) -> None:
        """The terminal goes away (a closed ssh session or window): the kernel sends SIGHUP to the TUI."""
        self._stop.set()
        self._reader.join()
        os.close(self.master)
        self.master = -1

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        if self.master >= 0:
            self.hang_up()


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM", "SIGINT", "hang up"])
def test_tui_killed_while_watching_its_run(runs, tally, rng, runs_dir, how):
    run = runs.prepare(max_steps=80, save_steps=10, step_s=0.04)
    tui = Terminal([sys.executable, "-m", "workbench", "--runs-dir", str(runs_dir)])
    try:
        tui.wait_for(run.rd.id[-12:])  # the runs list shows the prepared run
        mark = len(tui.out)
        tui.send(b"\r")  # enter on a prepared run: start it here, open its monitor
        tui.wait_for("RUNNING", since=mark)
        at = run.wait_step(rng.randint(3, 30))
        runner = run.rd.read_status()["runner_pid"]
        with tally.fault(f"TUI {how} while watching at step {at}") as fault:
            if how == "hang up":
                tui.hang_up()
            else:
                os.kill(tui.proc.pid, signal.Signals[how])
            try:
                tui.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                if how != "SIGINT":  # a kill -INT is only a key press to some terminal apps; the others must end it
                    raise AssertionError(f"the TUI outlived {how}")
                fault.fault += " (the TUI lived on; SIGKILL after)"
                tui.proc.kill()
            assert alive(runner) and run.rd.read_status()["state"] == "running", "the run died with the TUI"
            run.check_ended("completed", run.wait_done())
    finally:
        tui.close()
