"""The fault tally: every fault a test injects is recorded with what the test then observed, and the session ends
with one line, e.g. ``fault tally: 57 faults injected, 0 runs lost, 21 resumes reached max_steps, 143 s``.

Faults happen at seeded random steps: FAULT_SEED=N reruns a session's choices (the seed is printed with the tally
and in every failed test's report).
"""
from __future__ import annotations

import os
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from tests.faults.harness import Runs, RunLost

SEED = int(os.environ.get("FAULT_SEED") or random.SystemRandom().randrange(1_000_000))


@dataclass
class Outcome:
    fault: str
    lost: bool = False
    resumed_to_max: bool = False
    failed: bool = False  # the test failed for another reason (an orphan, a slow settle)


@dataclass
class Tally:
    outcomes: list[Outcome] = field(default_factory=list)
    first: float | None = None
    last: float | None = None

    def record(self, fault: str, lost: bool, resumed_to_max: bool = False) -> Outcome:
        out = Outcome(fault, lost, resumed_to_max)
        self.outcomes.append(out)
        return out

    @contextmanager
    def fault(self, name: str):
        """Count one injected fault; the body sets ``resumed_to_max``. RunLost inside it counts a lost run."""
        out = self.record(name, lost=False)
        try:
            yield out
        except RunLost:
            out.lost = True
            raise
        except BaseException:
            out.failed = True
            raise

    def line(self) -> str:
        n = len(self.outcomes)
        lost = sum(o.lost for o in self.outcomes)
        resumed = sum(o.resumed_to_max for o in self.outcomes)
        failed = sum(o.failed for o in self.outcomes)
        wall = (self.last or time.monotonic()) - (self.first or time.monotonic())
        return (f"fault tally: {n} faults injected, {lost} runs lost, {resumed} resumes reached max_steps, "
                f"{wall:.0f} s" + (f", {failed} other failures" if failed else "") + f" (FAULT_SEED={SEED})")


TALLY = Tally()


@pytest.fixture
def tally():
    TALLY.first = TALLY.first or time.monotonic()
    yield TALLY
    TALLY.last = time.monotonic()


@pytest.fixture
def rng(request) -> random.Random:
    """This test's own stream: the same FAULT_SEED gives the same steps whatever else ran."""
    return random.Random(f"{SEED}:{request.node.nodeid}")


@pytest.fixture
def runs(runs_dir, monkeypatch):
    made = Runs(runs_dir, monkeypatch)
    yield made
    made.cleanup()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and "rng" in getattr(item, "fixturenames", ()):
        report.sections.append(("fault seed", f"rerun with FAULT_SEED={SEED} (this test's random steps)"))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if TALLY.outcomes:
        terminalreporter.write_sep("-", "fault injection")
        terminalreporter.write_line(TALLY.line())
