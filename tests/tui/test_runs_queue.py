"""The runs screen shows the runs waiting in the run queue first, in queue order ("waiting #N"); shift+up/down and T
reorder them (the cursor follows the run) and s cancels a waiting run; ctrl+t in the editor queues a recipe."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.core.fakes import FAKE
from tests.tui.conftest import make_run
from tests.tui.screen_text import screen_text, wait_for
from tests.tui.test_editor_screen import open_editor, recipe_copy
from tests.tui.test_runs_screen import wait_rows
from workbench.core import lifecycle, queue, supervisor
from workbench.core.launch import LaunchPlan
from workbench.core.queue_runner import TEST_NVML_ENV
from workbench.core.rundir import RunDir

SIZE = (100, 24)


def make_waiting(runs_dir: Path, run_id: str) -> None:
    d = make_run(runs_dir, run_id, state="waiting", steps=0)
    status = json.loads((d / "status.json").read_text())
    for key in ("ended", "exit_code", "started"):
        status.pop(key, None)
    status.update(queue=True, gpus_needed=1)
    (d / "status.json").write_text(json.dumps(status))


def rows(app) -> list[tuple[str, str]]:
    table = app.screen.query_one("DataTable")
    return [(str(table.get_row_at(i)[0]), str(table.get_row_at(i)[1])) for i in range(table.row_count)]


def footer(app) -> str:
    return screen_text(app).splitlines()[-1]


async def test_waiting_runs_come_first_in_queue_order_and_keys_reorder_and_cancel(runs_dir, app_factory):
    a, b, c = "20260101-000001-a", "20260101-000002-b", "20260101-000003-c"
    make_run(runs_dir, "20260105-000000-done")
    for run_id in (a, b, c):
        make_waiting(runs_dir, run_id)
    queue.QueueDir.of(runs_dir).locked(lambda s: s.update(order=[b, c, a]))
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await wait_rows(pilot, 4)
        assert rows(app) == [(b, "waiting #1"), (c, "waiting #2"), (a, "waiting #3"),
                             ("20260105-000000-done", "completed")]
        await wait_for(pilot, lambda: "⇧↑↓ Reorder" in footer(app) and "g Start now" in footer(app))  # after Stop
        await pilot.press("shift+down")  # b: #1 -> #2
        await wait_for(pilot, lambda: rows(app)[0][0] == c)
        assert [r[0] for r in rows(app)[:3]] == [c, b, a]
        assert [rd.id for rd in queue.waiting_runs(runs_dir)] == [c, b, a]
        assert app.screen.selected_id() == b, "the cursor follows the moved run"
        await pilot.press("down", "T")  # a to the top
        await wait_for(pilot, lambda: rows(app)[0][0] == a)
        assert rows(app)[:3] == [(a, "waiting #1"), (c, "waiting #2"), (b, "waiting #3")]
        await pilot.press("s")  # on a: asked, then cancelled, out of the queue
        await wait_for(pilot, lambda: "Cancel waiting run" in screen_text(app))
        await pilot.press("y")
        await wait_for(pilot, lambda: rows(app)[0][0] == c)
        assert [r[0] for r in rows(app)[:2]] == [c, b] and (a, "cancelled") in rows(app)
        assert RunDir(runs_dir / a).read_status()["state"] == "stopped"
        await pilot.press("up", "shift+up")  # on the completed run: not a waiting one
        await pilot.pause(0.1)
        assert [rd.id for rd in queue.waiting_runs(runs_dir)] == [c, b]
        await wait_for(pilot, lambda: "Reorder" not in footer(app))  # no queue keys on a run that is not waiting


async def test_ctrl_t_in_the_editor_queues_the_recipe_and_the_list_shows_it_waiting(tmp_path, runs_dir, app_factory,
                                                                                    monkeypatch):
    """The queue process sees one busy stand-in GPU, so the queued run waits; cancelling it empties the queue."""
    nvml = tmp_path / "gpus.json"
    nvml.write_text(json.dumps([{"memory_used": 70 * 2**30, "memory_total": 80 * 2**30, "utilisation": 99}]))
    monkeypatch.setenv(TEST_NVML_ENV, str(nvml))
    monkeypatch.setattr(supervisor, "launch_plan", lambda r, run_dir: LaunchPlan(
        [sys.executable, str(FAKE), "succeed", str(run_dir)], {"WORKBENCH_RUN_DIR": str(run_dir)}))
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_editor(app, pilot, recipe_copy(tmp_path))
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: len(app.screen_stack) == 2 and app.screen.query("DataTable")
                       and rows(app) and rows(app)[0][1] == "waiting #1")
        (proc,) = app.launched  # the queue process, started on demand
        qd = queue.QueueDir.of(runs_dir)
        await wait_for(pilot, lambda: qd.read_status().get("blocked"))
        assert "free GPU" in qd.read_status()["blocked"]["why"]
        await pilot.press("s", "y")
        await wait_for(pilot, lambda: rows(app)[0][1] == "cancelled")
    assert proc.wait(timeout=10) == 0 and lifecycle.queue_status(qd)["state"] == "completed"
