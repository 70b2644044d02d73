"""Launch the shipped GRPO template from the editor for real (tiny model, CPU), follow it to completion in the
monitor, and see its samples. About 10 s."""
from __future__ import annotations

import pytest

from tests.tui.screen_text import screen_text
from workbench.tui.app import WorkbenchApp
from workbench.tui.screens.monitor import MonitorScreen

pytestmark = pytest.mark.e2e


async def test_launch_from_the_editor_and_watch_it_finish(runs_dir):
    app = WorkbenchApp(runs_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        app.new_run("grpo")
        await pilot.pause(0.2)
        app.screen.query_one("#in-train-max_steps").value = "4"
        await pilot.press("ctrl+r")
        for _ in range(600):
            await pilot.pause(0.1)
            screen = app.screen
            if isinstance(screen, MonitorScreen) and screen.status.get("state") in ("completed", "failed", "killed"):
                break
        assert isinstance(app.screen, MonitorScreen), screen_text(app)
        assert app.screen.status.get("state") == "completed", app.screen.status
        await pilot.pause(0.6)  # one more poll for the last rows
        assert app.screen.history.max_steps == 4 and app.screen.history.step == 4
        await pilot.press("2")
        await pilot.pause(0.1)
        assert "step 4" in screen_text(app)
        assert len(app.launched) <= 1
