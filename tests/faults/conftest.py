"""The fault tally: every fault a test injects is recorded with what the test then observed, and the session ends
with one line, e.g. ``fault tally: 57 faults injected, 0 runs lost, 21 resumes reached max_steps, 143 s``.

Faults happen at seeded random steps: FAULT_SEED=N reruns a session's choices (the seed is printed with the tally
and in every failed test's report). The tally itself is in tally.py; tests/conftest.py prints it at the end, after
gathering it from every pytest-xdist worker.
"""
from __future__ import annotations

import random
import time

import pytest

from tests.faults.harness import Runs
from tests.faults.tally import SEED, TALLY


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
