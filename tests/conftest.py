"""Shared test set-up: caches inside the project (never the user's home), offline hub, helpers."""
from __future__ import annotations

import os
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
