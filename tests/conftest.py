"""Shared test set-up: caches inside the project (never the user's home), offline hub, helpers."""
from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache"
os.environ.setdefault("WORKBENCH_CACHE", str(CACHE / "workbench"))
os.environ.setdefault("HF_HOME", str(CACHE / "huggingface"))
os.environ.setdefault("HF_DATASETS_CACHE", str(CACHE / "huggingface" / "datasets"))
os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(CACHE / "torch_extensions"))
os.environ["HF_HUB_OFFLINE"] = "1"  # no test ever reaches for the network
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if "PYTEST_XDIST_WORKER" in os.environ:  # xdist gives its workers COLUMNS=80 LINES=24; a serial run has neither
    for var in ("COLUMNS", "LINES"):
        os.environ.pop(var, None)

# Tests that start real trainers (or several processes on the rendezvous port) and the fault tests (signals at a
# step of a run that takes 0.02 s a step): `make test` runs the suite on two pytest-xdist workers, and these all go
# to one of them, one after another as in a serial run (the fault tests after the e2e ones, when the other worker is
# done); the other worker takes the rest (TUI pilot, core, bench), which mostly wait or use one core.
TRAINER_TESTS = ("tests/e2e/", "tests/faults/", "tests/train/")


def pytest_configure(config):
    # One FAULT_SEED for the session (tests/faults/tally.py reads it): chosen here, where the xdist controller runs
    # before it starts its workers, so every worker makes the same random choices a serial run would.
    os.environ.setdefault("FAULT_SEED", str(random.SystemRandom().randrange(1_000_000)))


# Tests that hold training to a wall-clock budget (the demo learns, the newcomer's run learns within 90 s) run last:
# by then the other worker has long finished the light tests and they have both cores, as in a serial run.
TIMED_LAST = ("tests/e2e/test_newcomer_tmux.py", "tests/e2e/test_demo_learns.py")


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: Path(item.path).relative_to(ROOT).as_posix() in TIMED_LAST)  # stable


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """xdist's scope scheduling with one scope for every trainer test (given to one worker first: the largest scope
    goes first) and a scope per test for the rest. Not xdist_group: with pytest 9 its @group suffix no longer
    reaches the node id, and the groups are silently ignored."""
    from xdist.scheduler import LoadScopeScheduling

    class TrainersOnOneWorker(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "trainers" if nodeid.startswith(TRAINER_TESTS) else nodeid

    return TrainersOnOneWorker(config, log)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """xdist: a worker is done; its fault tally joins the controller's."""
    if "fault_tally" in getattr(node, "workeroutput", {}):
        from tests.faults.tally import TALLY
        TALLY.merge(node.workeroutput["fault_tally"])


def pytest_sessionfinish(session, exitstatus):
    tally = sys.modules.get("tests.faults.tally")
    if hasattr(session.config, "workeroutput") and tally and tally.TALLY.outcomes:
        session.config.workeroutput["fault_tally"] = tally.TALLY.to_json()  # plain dicts, lists and floats


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    tally = sys.modules.get("tests.faults.tally")
    if tally and tally.TALLY.outcomes:
        terminalreporter.write_sep("-", "fault injection")
        terminalreporter.write_line(tally.TALLY.line())


FIXTURES = Path(__file__).resolve().parent / "fixtures"
RECIPES = ROOT / "recipes"
ASSETS = ROOT / "assets" / "data"


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    """A test's runs folder. A run the test left alive (it failed half way, or launched by mistake) is killed when
    the test ends, so it never trains on through the rest of the suite; the test is failed for it."""
    d = tmp_path / "runs"
    d.mkdir()
    yield d
    left = kill_left_runs(d)
    if left:
        pytest.fail(f"the test left run(s) running, now killed: {', '.join(left)}")


def kill_left_runs(runs: Path, grace: float = 15.0) -> list[str]:
    """Kill the processes of every run in ``runs`` still there after ``grace`` seconds (a runner writes the final
    state a moment before it exits; a stopped run is given time to end); the runs they belonged to."""
    import signal
    import time

    from workbench.core import lifecycle
    from workbench.core.rundir import RunDir

    left = []
    for path in sorted(runs.iterdir()) if runs.is_dir() else []:
        if not (path / "status.json").is_file():
            continue
        rd = RunDir(path)
        deadline = time.monotonic() + grace
        while (pids := lifecycle.processes(rd)) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if pids:
            left.append(f"{path.name} ({rd.read_status().get('state')}, pids {pids})")
    return left


def workbench_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "workbench", *args]
