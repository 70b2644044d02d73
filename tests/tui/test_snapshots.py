"""Snapshots of the runs list, the monitor and the editor at 80x24 and 120x40 (pytest-textual-snapshot; the SVGs
are in tests/tui/__snapshots__/test_snapshots/, `pytest --snapshot-update` rewrites them after a deliberate
change, and a changed one is looked at before it is accepted).

Deterministic: the clock is frozen (ages, durations and the ETA are computed from it), the runs are written around
it (make_run(now=...)), the system line samples a fixed machine, the header names the runs folder "runs" instead
of a tmp path, the editor's recipe is opened from a folder that is the current one (relative paths), and no cursor
blinks.
"""
from __future__ import annotations

import time
from collections import deque
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input

from tests.tui.conftest import make_run
from tests.tui.screen_text import wait_for
from tests.tui.test_editor_screen import recipe_copy
from tests.tui.test_monitor_screen import open_monitor
from tests.tui.test_runs_pipelines import make_pipeline
from tests.tui.test_runs_queue import make_waiting
from workbench.core import queue
from workbench.core.gpus import GpuSnapshot
from workbench.core.system import GIB, SystemSample
from workbench.tui.app import WorkbenchApp
from workbench.tui.screens.editor import EditorScreen

FIXED = 1_767_225_600.0
LIVE = "20260101-100000-grpo-arith-long-name-beta004"
SAMPLE = SystemSample(time=FIXED, cpu_percent=37.0, cpu_count=16, ram_used=41 * GIB, ram_total=126 * GIB,
                      disk_free=120 * GIB, disk_path="runs", gpu=GpuSnapshot(available=False, reason="no GPU"))


class FixedSampler:
    """The system line's sampler, always the same machine."""
    history = deque([SAMPLE])

    def sample(self) -> SystemSample:
        return SAMPLE

    def samples(self) -> list[SystemSample]:
        return [SAMPLE]


@pytest.fixture
def frozen_clock(monkeypatch):
    monkeypatch.setattr(time, "time", lambda: FIXED)


def populate(runs_dir: Path) -> None:
    """What a runs folder holds after a few days: finished, failed and live runs, a pipeline, a waiting run."""
    make_run(runs_dir, "20251229-083012-grpo-arith-lr1e-4", steps=1200, max_steps=1200, now=FIXED - 2 * 86400)
    make_run(runs_dir, "20251230-090000-sft-tiny", state="failed", stage="sft", steps=38, max_steps=300,
             now=FIXED - 86400)
    make_pipeline(runs_dir, "20251231-120000-demo", "completed",
                  ["20251231-120001-demo-pretrain", "20251231-120100-demo-sft"])
    make_run(runs_dir, LIVE, state="running", steps=30, max_steps=300, now=FIXED)
    for line in ("Map: 100%|██████████| 160/160", "{'loss': 0.0333, 'grad_norm': 0.5, 'learning_rate': 0.0001}"):
        with open(runs_dir / LIVE / "stdout.log", "a") as f:
            f.write(line + "\n")
    make_waiting(runs_dir, "20260101-110000-dpo-next")
    queue.QueueDir.of(runs_dir).locked(lambda s: s.update(order=["20260101-110000-dpo-next"]))


def snapshot_app(runs_dir: Path) -> WorkbenchApp:
    populate(runs_dir)
    app = WorkbenchApp(runs_dir)
    app.system_sampler = FixedSampler()
    return app


async def settle(pilot) -> None:
    """The runs list refreshed, the system line sampled, the footer composed; the header names no tmp path."""
    app = pilot.app
    app.sub_title = "runs"
    await wait_for(pilot, lambda: app.screen.query(DataTable) and app.screen.query_one(DataTable).row_count == 7,
                   "the 7 runs listed")
    await pilot.pause(0.6)


async def on_runs(pilot) -> None:
    await settle(pilot)


async def on_monitor(pilot) -> None:
    await settle(pilot)
    await open_monitor(pilot.app, pilot, pilot.app.runs_dir / LIVE)
    await pilot.pause(1.0)  # charts drawn, state line fitted


async def on_editor(pilot) -> None:
    await settle(pilot)
    path = Path("recipes/grpo-tiny.toml")
    pilot.app.edit_recipe(path.read_text(), path.resolve())
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, EditorScreen)
                   and "validating" not in str(pilot.app.screen.query_one("#problems").render()),
                   "the recipe validated, its data previewed")
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause(0.5)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_runs_list_snapshot(runs_dir, frozen_clock, snap_compare, size):
    assert snap_compare(snapshot_app(runs_dir), terminal_size=size, run_before=on_runs)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_monitor_snapshot(runs_dir, frozen_clock, snap_compare, size):
    assert snap_compare(snapshot_app(runs_dir), terminal_size=size, run_before=on_monitor)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_editor_snapshot(tmp_path, runs_dir, frozen_clock, snap_compare, size, monkeypatch):
    recipe_copy(tmp_path)
    monkeypatch.chdir(tmp_path)  # the recipe and its data show as relative paths
    assert snap_compare(snapshot_app(runs_dir), terminal_size=size, run_before=on_editor)
