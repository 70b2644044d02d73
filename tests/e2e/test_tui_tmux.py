"""The real `workbench` TUI in a real terminal (tmux): list a fake run, open its monitor, go back, quit.

Skipped, with the reason, when tmux is not installed.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from tests.tui.conftest import make_run

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)")]


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def wait_for(session: str, *texts: str, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    screen, text = "", " and ".join(texts)
    while time.monotonic() < deadline:
        screen = tmux("capture-pane", "-p", "-t", session)
        if all(t in screen for t in texts):
            return screen
        time.sleep(0.2)
    raise AssertionError(f"'{text}' not on screen after {timeout:.0f} s:\n{screen}")


def start_tui(runs_dir, width: int, height: int) -> str:
    """The real `workbench` TUI on the runs dir in a new detached tmux session of that size; the session's name.
    The pane's shell sleeps after the app exits, so the screen stays readable."""
    session = f"wb-{uuid.uuid4().hex[:8]}"
    env = " ".join(f"{k}={v}" for k, v in (("HF_HUB_OFFLINE", "1"), ("WORKBENCH_CACHE", os.environ["WORKBENCH_CACHE"]),
                                           ("TERM", "xterm-256color")))
    cmd = f"env {env} {sys.executable} -m workbench --runs-dir {runs_dir}; sleep 30"
    tmux("new-session", "-d", "-s", session, "-x", str(width), "-y", str(height), cmd)
    return session


def test_open_a_run_and_quit(runs_dir):
    make_run(runs_dir, "20260101-000000-tmux", steps=6, max_steps=10)
    session = start_tui(runs_dir, 80, 24)
    try:
        wait_for(session, "20260101-000000-tmux")
        tmux("send-keys", "-t", session, "Enter")
        screen = wait_for(session, "COMPLETED", "6/10")  # the monitor's state line, once the metrics are read
        assert "reward" in screen
        tmux("send-keys", "-t", session, "Escape")
        wait_for(session, "New run")
        tmux("send-keys", "-t", session, "q")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the app exits; the pane's shell then sleeps
            if "20260101-000000-tmux" not in tmux("capture-pane", "-p", "-t", session):
                break
            time.sleep(0.2)
        assert "20260101-000000-tmux" not in tmux("capture-pane", "-p", "-t", session)
        assert (runs_dir / "20260101-000000-tmux").is_dir()  # quitting touches no run
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
