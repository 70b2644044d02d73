"""The help screen: ? (or F1) on the runs list, the monitor and the editor lists every key the screen binds, the
footer's and the others, with its description, and the app's keys; escape or ? closes it."""
from __future__ import annotations

from tests.conftest import RECIPES
from tests.tui.conftest import make_run
from tests.tui.screen_text import screen_text
from tests.tui.test_runs_screen import wait_rows
from workbench.tui.screens.editor import EditorScreen
from workbench.tui.screens.help import HelpScreen
from workbench.tui.screens.monitor import MonitorScreen
from workbench.tui.screens.runs import RunsScreen

SIZE = (120, 70)  # tall enough that the whole list is on screen


def assert_every_binding_listed(app, screen) -> None:
    text = screen_text(app)
    lines = text.splitlines()
    listed = 0
    for node in (screen, app):
        for _key, binding in node._bindings:
            if binding.system:
                continue
            key, description = app.get_key_display(binding), binding.description
            assert any(key in line and description in line for line in lines), (key, description, text)
            listed += 1
    assert listed > 10


async def test_runs_list_keys(runs_dir, app_factory):
    make_run(runs_dir, "20260101-000000-a")
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await wait_rows(pilot, 1)
        runs = app.screen
        await pilot.press("question_mark")
        await pilot.pause(0.1)
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        assert "Keys: Runs" in text and "Everywhere" in text
        for hidden in ("Move down in the queue", "Move to the top of the queue", "Focus Next"):  # not in the footer
            assert hidden in text
        assert_every_binding_listed(app, runs)
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("f1")
        await pilot.pause(0.1)
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("question_mark")
        assert isinstance(app.screen, RunsScreen)


async def test_monitor_keys(runs_dir, app_factory):
    d = make_run(runs_dir, "20260101-000000-a")
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        app.open_monitor(d)
        await pilot.pause(0.2)
        monitor = app.screen
        assert isinstance(monitor, MonitorScreen)
        await pilot.press("question_mark")
        await pilot.pause(0.1)
        text = screen_text(app)
        assert isinstance(app.screen, HelpScreen) and "Keys: Monitor (run 20260101-000000-a)" in text
        assert "Latest" in text and "System" in text  # keys the footer does not show
        assert_every_binding_listed(app, monitor)
        await pilot.press("escape")
        assert app.screen is monitor


async def test_editor_keys_with_f1_inside_a_text_field(runs_dir, app_factory):
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        app.open_recipe_file(RECIPES / "sft-tiny.toml")
        await pilot.pause(0.3)
        editor = app.screen
        assert isinstance(editor, EditorScreen)
        editor.query_one("#in-run-name").focus()
        await pilot.press("question_mark")  # typed into the field, not a key
        assert app.screen is editor
        await pilot.press("f1")
        await pilot.pause(0.1)
        text = screen_text(app)
        assert isinstance(app.screen, HelpScreen) and "Keys: Editor (recipe editor)" in text
        assert "All fields" in text and "Queue" in text
        assert_every_binding_listed(app, editor)
        await pilot.press("escape")
        assert app.screen is editor
