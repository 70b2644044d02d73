"""A newcomer's first run, in the real TUI in a real terminal (tmux, 120x40): `n`, Enter on grpo (the first stage
of the picker), ctrl+r. The template starts from builtin:tiny-chat (built on first use), and within 90 s of ctrl+r
the reward the monitor shows has risen; no completion on screen holds a replacement character.

What the screen shows is what is asserted: the monitor's state line ("RUNNING  [####...]  42/200  ...  reward
1.5") is read once a second, and the rewards of the last third of the readings beat those of the first third.
"""
from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import time

import pytest

from tests.conftest import workbench_cmd
from tests.e2e.test_tui_tmux import start_tui, tmux, wait_for

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)")]

STATE = re.compile(r"RUNNING\s+\[[#.]+\]\s+(\d+)/(\d+).*?\breward (-?[\d.]+(?:e-?\d+)?)")
BUDGET_S = 90.0


def readings(session: str, seconds: float) -> list[tuple[int, float]]:
    """(step, reward) from the monitor's state line, once a second for ``seconds`` (a new step only), or until the
    run has left the running state (it completed within the budget)."""
    out: list[tuple[int, float]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        screen = tmux("capture-pane", "-p", "-t", session)
        m = STATE.search(screen)
        if m and (not out or int(m[1]) > out[-1][0]):
            out.append((int(m[1]), float(m[3])))
        elif not m and out and "RUNNING" not in screen:
            break
        time.sleep(1.0)
    return out


def test_first_grpo_run_from_the_tui_learns_within_90_s(runs_dir):
    session = start_tui(runs_dir, 120, 40)
    try:
        wait_for(session, "New run")
        tmux("send-keys", "-t", session, "n")
        screen = wait_for(session, "grpo")
        tmux("send-keys", "-t", session, "Enter")
        screen = wait_for(session, "builtin:tiny-chat")  # the editor, on the grpo template
        assert "stage" in screen
        tmux("send-keys", "-t", session, "C-r")
        started = time.monotonic()
        wait_for(session, "RUNNING", timeout=60)
        seen = readings(session, BUDGET_S - (time.monotonic() - started))
        assert len(seen) >= 12, f"the state line showed too few steps in {BUDGET_S:.0f} s: {seen}"
        third = len(seen) // 3
        early = statistics.mean(r for _, r in seen[:third])
        late = statistics.mean(r for _, r in seen[-third:])
        report = f"reward early {early:.2f} -> late {late:.2f} over steps {seen[0][0]}..{seen[-1][0]}: {seen}"
        print(report)
        assert late >= early + 0.25, "the reward the monitor shows has risen: " + report

        tmux("send-keys", "-t", session, "2")  # the Samples tab
        screen = wait_for(session, "<answer>", timeout=20)
        assert "\ufffd" not in screen, screen
    finally:
        subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "stop", "last"), capture_output=True, timeout=120)
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
