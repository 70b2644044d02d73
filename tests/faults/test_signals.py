"""Signals to each process of a run, at seeded random steps: the runner, the trainer, the whole process group.

Every signal ends in an honest state within seconds, leaves no process behind, and a run that did not finish
resumes from its last complete checkpoint to max_steps with one continuous line of metrics.
"""
from __future__ import annotations

import time

import pytest

from tests.faults.harness import TARGETS, RunLost, expected_state

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("sig", ["SIGKILL", "SIGTERM", "SIGHUP", "SIGINT"])
def test_one_signal_at_a_random_step(runs, tally, rng, sig, target):
    run = runs.launch(max_steps=30, save_steps=5)
    at = run.wait_step(rng.randint(2, 26))
    with tally.fault(f"{sig} to the {target} at step {at}") as fault:
        run.inject(sig, target)
        want = expected_state(sig, target)
        st = run.check_ended(want, run.wait_done() if want == "completed" else None)
        if want == "stopped":
            run.stop_checkpoint_is_at_the_stop()
        if st["state"] != "completed":
            fault.resumed_to_max = run.resume_to_max()  # refused, with the reason, before the first checkpoint
            assert fault.resumed_to_max or at <= run.save_steps, "checkpoint-5 was complete: it must resume"


@pytest.mark.parametrize("target", ["trainer", "group"])
def test_sigterm_while_loading_is_a_stop(runs, tally, rng, target):
    """SIGTERM before training begins (model loading), in a fresh run and again in its resume."""
    run = runs.launch(max_steps=30, save_steps=5, load_s=1.0)
    run.wait_phase("loading")
    time.sleep(0.2)  # into the load itself, past the status write before it (see the report on entry.py)
    with tally.fault(f"SIGTERM to the {target} while loading"):
        run.inject("SIGTERM", target)
        st = run.check_ended("stopped")
        assert "error" not in st, st
        assert run.start_resume() is None, "nothing was trained: no checkpoint"

    run = runs.launch(max_steps=30, save_steps=5, load_s=0.2)
    at = run.wait_step(rng.randint(6, 25))
    with tally.fault(f"SIGKILL to the trainer at step {at}"):
        run.inject("SIGKILL", "trainer")
        run.check_ended("killed")
        assert run.start_resume() is not None
    run.wait_phase("loading")
    time.sleep(0.1)
    with tally.fault(f"SIGTERM to the {target} while the resume loads") as fault:
        run.inject("SIGTERM", target)
        run.check_ended("stopped")
        fault.resumed_to_max = run.resume_to_max()


CHAOS = [("SIGKILL", "trainer"), ("SIGKILL", "group"), ("SIGTERM", "trainer"), ("SIGTERM", "group"),
         ("SIGHUP", "group"), ("SIGINT", "group"), ("SIGHUP", "trainer"), ("SIGKILL", "runner")]
WHILE_LOADING = [("SIGKILL", "trainer"), ("SIGKILL", "group"), ("SIGTERM", "trainer"), ("SIGTERM", "group")]


@pytest.mark.parametrize("round_", range(2))
def test_faults_one_after_another_until_it_finishes(runs, tally, rng, round_):
    """One run takes a random signal every few steps (some while a resume loads) until it reaches max_steps."""
    run = runs.launch(max_steps=60, save_steps=4, load_s=0.5)
    step, orphaned, just_resumed, last_fatal = 0, False, False, None
    while True:
        loading = just_resumed and rng.random() < 0.3
        sig, target = rng.choice(WHILE_LOADING if loading else CHAOS)
        if orphaned and target == "runner":
            continue  # that runner is gone already
        at = max(step + rng.randint(2, 9), run.save_steps + 1)  # a fault before the first checkpoint is elsewhere
        if not loading and at >= run.max_steps - 1:
            break
        if loading:
            run.wait_phase("loading")
            time.sleep(0.1)  # into the load itself, past the status write before it
        else:
            step = run.wait_step(at)
        with tally.fault(f"{sig} to the {target} " + ("while a resume loads" if loading else f"at step {step}")) \
                as fault:
            run.inject(sig, target)
            just_resumed = False
            want = ("killed" if sig == "SIGKILL" else "stopped") if loading else expected_state(sig, target)
            if want == "completed":
                orphaned = orphaned or (sig, target) == ("SIGKILL", "runner")
                continue  # the attempt trains on: the next fault comes later in it
            run.check_ended(want)
            if run.start_resume() is None:
                raise RunLost("a checkpoint every 4 steps, yet none to resume from")
            orphaned, just_resumed, last_fatal = False, True, fault
            step = int(run.rd.read_status()["resume_from"].rsplit("-", 1)[-1])
    try:
        run.check_ended("completed", run.wait_done())
        run.check_continuous()
    except RunLost:
        if last_fatal is not None:
            last_fatal.lost = True
        raise
    if last_fatal is not None:
        last_fatal.resumed_to_max = True
