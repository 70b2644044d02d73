"""Waiting without polling: the exit Event of a child, and a runner that sleeps between heartbeats while its
trainer trains (it used to wake every 50 ms in Popen.wait(timeout), taking turns from the trainer's threads)."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.core.test_supervisor import launch_fake  # noqa: F401 - the fixture
from tests.core.fakes import wait_training
from workbench.core.exitwait import exit_event


def wakeups(pid: int) -> int:
    """Voluntary context switches of a process so far (each sleep that ended is one)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    raise AssertionError("no voluntary_ctxt_switches")


def test_the_exit_event_is_set_when_the_child_ends_and_it_is_reaped():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3); raise SystemExit(3)"])
    done = exit_event(proc)
    assert not done.wait(0.05)
    t = time.monotonic()
    assert done.wait(10) and time.monotonic() - t < 5
    assert proc.returncode == 3


def test_the_runner_sleeps_between_heartbeats_while_the_trainer_runs(launch_fake):  # noqa: F811
    got = launch_fake("sleep")  # a trainer that waits to be killed
    wait_training(got.run)
    runner = got.process.pid
    before = wakeups(runner)
    time.sleep(2.0)
    assert wakeups(runner) - before <= 4  # a heartbeat every 5 s, not 40 waitpid polls
