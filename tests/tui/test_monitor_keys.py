"""The monitor's stop asks first (what the stop keeps or loses), and its Log tab wraps long lines, or, unwrapped
(w), scrolls them sideways with left / right while the tabs still switch with 1-5."""
from __future__ import annotations

from textual.widgets import TabbedContent

from tests.tui.conftest import make_run
from tests.tui.screen_text import notices, screen_text
from tests.tui.test_monitor_screen import open_monitor
from workbench.tui.screens.modals import ConfirmModal
from workbench.tui.screens.monitor import MonitorScreen
from workbench.tui.widgets.logview import LogView

SIZE = (80, 24)
LONG_LINE = "warning: " + "a long line " * 20 + "THE-END"


async def test_stop_asks_first_cancel_keeps_it_running_and_confirm_requests_it(runs_dir, app_factory):
    d = make_run(runs_dir, "20260101-000000-live", state="running", steps=7, max_steps=50)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await open_monitor(app, pilot, d)
        await pilot.press("s")
        await pilot.pause(0.1)
        assert isinstance(app.screen, ConfirmModal)
        assert "Step 7 of 50; no checkpoint yet." in app.screen.question
        assert "A checkpoint is written at the stop" in app.screen.question
        assert "Keep running" in screen_text(app)
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert isinstance(app.screen, MonitorScreen) and not (d / "stop.request").exists()
        await pilot.press("s")
        await pilot.pause(0.1)
        await pilot.click("#yes")
        await pilot.pause(0.1)
        assert isinstance(app.screen, MonitorScreen) and (d / "stop.request").exists()
        assert any("stop requested" in n for n in notices(app))
        await pilot.press("s")  # already asked: said so, no second question
        await pilot.pause(0.1)
        assert isinstance(app.screen, MonitorScreen) and any("already requested" in n for n in notices(app))


async def test_stop_of_a_best_of_k_run_says_what_is_lost(runs_dir, app_factory):
    """best-of-k keeps no checkpoints: the question says its steps are lost."""
    import json

    d = make_run(runs_dir, "20260101-000000-bok", state="running", steps=4, max_steps=20)
    status = json.loads((d / "status.json").read_text())
    (d / "status.json").write_text(json.dumps({**status, "stage": "best-of-k"}))
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await open_monitor(app, pilot, d)
        await pilot.press("s")
        await pilot.pause(0.1)
        assert "No checkpoint yet: all 4 steps will be lost" in app.screen.question


async def test_log_wraps_long_lines_and_unwrapped_scrolls_sideways(runs_dir, app_factory):
    d = make_run(runs_dir, "20260101-000000-log", log_lines=2)
    with open(d / "stdout.log", "a") as f:
        f.write(LONG_LINE + "\n")
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_monitor(app, pilot, d)
        await pilot.press("3")
        await pilot.pause(0.2)
        log = screen.query_one(LogView)
        assert app.focused is log, "the log has the focus, so the arrows move it"
        assert "THE-END" in screen_text(app), "wrapped: the end of the long line is on screen"
        assert log.max_scroll_x == 0
        await pilot.press("w")  # unwrapped: one line per line, as wide as it is
        await pilot.pause(0.2)
        assert not log.wrap and log.max_scroll_x > 0
        assert "THE-END" not in screen_text(app)
        await pilot.press("right", "right", "right")
        await pilot.pause(0.2)
        assert log.scroll_x > 0
        assert screen.query_one(TabbedContent).active == "log", "right scrolled the log, not the tabs"
        log.scroll_to(x=log.max_scroll_x, animate=False)  # to the end of the longest line
        await pilot.pause(0.2)
        assert "THE-END" in screen_text(app)
        await pilot.press("left")
        await pilot.pause(0.1)
        assert 0 < log.scroll_x < log.max_scroll_x
        footer = screen_text(app).splitlines()[-1]
        assert "1-5 Tabs" in footer and "w Wrap" in footer
        await pilot.press("4")
        await pilot.pause(0.1)
        assert screen.query_one(TabbedContent).active == "recipe"
