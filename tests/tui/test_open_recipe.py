"""Recipes are files you open: the app started on a file (workbench edit FILE / workbench FILE.toml) or a run
(workbench open RUN), the open-recipe screen (recent files, this folder, shipped recipes), and saving back with the
user's comments kept and no template comment the edit made false."""
from __future__ import annotations

import json
import shutil

from textual.widgets import Input, OptionList, Select, TabbedContent

from tests.conftest import ASSETS, RECIPES
from tests.tui.conftest import make_run
from tests.tui.screen_text import notices, screen_text, wait_for
from workbench.core import recent
from workbench.tui.app import WorkbenchApp
from workbench.tui.screens.editor import EditorScreen
from workbench.tui.screens.monitor import MonitorScreen
from workbench.tui.screens.open_recipe import OpenRecipeScreen
from workbench.tui.screens.runs import RunsScreen

SIZE = (80, 24)


def user_recipe(tmp_path):
    """grpo-tiny.toml beside its data, with comments of the user's own."""
    (tmp_path / "assets" / "data").mkdir(parents=True)
    shutil.copy(ASSETS / "arith-prompts.jsonl", tmp_path / "assets" / "data")
    (tmp_path / "recipes").mkdir()
    path = tmp_path / "recipes" / "mine.toml"
    text = (RECIPES / "grpo-tiny.toml").read_text()
    text = text.replace("[rewards]\n", "# my own note: rewards tuned on Tuesday\n[rewards]\n")
    text = text.replace("max_steps = 300\n", "max_steps = 300                 # enough for a smoke test\n")
    path.write_text(text)
    return path


async def test_app_started_on_a_file_edits_and_saves_without_stale_comments(tmp_path, runs_dir, recent_files):
    path = user_recipe(tmp_path)
    app = WorkbenchApp(runs_dir, recipe=path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen), "the editor")
        screen = app.screen
        assert screen.recipe.path == path.resolve() and "recipes/mine.toml" in screen_text(app)
        screen.query_one(TabbedContent).active = "tab-train"
        await pilot.pause(0.05)
        screen.query_one("#in-train-num_generations", Input).value = "2"
        screen.query_one("#in-train-max_steps", Input).value = "50"
        screen.query_one("#peft-method", Select).value = "lora"
        screen.query_one("#in-data-path", Input).value = str(tmp_path / "assets" / "data" / "arith-prompts.jsonl")
        await pilot.pause(0.05)
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        saved = path.read_text()
        lines = {ln.split("=")[0].strip(): ln for ln in saved.splitlines() if "=" in ln and not ln.startswith("#")}
        assert "# my own note: rewards tuned on Tuesday" in saved  # the user's comments stay
        assert lines["max_steps"].endswith("# enough for a smoke test")
        assert saved.startswith("# GRPO on the built-in tiny chat model")
        assert lines["num_generations"].endswith("# completions per prompt (>= 2)")  # still true
        assert lines["per_device_train_batch_size"].endswith("# counts completions: 16 / 2 = 8 prompts per step")
        assert "16 / 4" not in saved
        assert lines["method"].startswith('method = "lora"') and '# or "lora"' not in saved
        assert "relative to this file" not in saved  # the path became absolute
        assert json.loads(recent_files.read_text())[0] == str(path.resolve())
        await pilot.press("escape")  # saved: leaves without asking, to the runs list
        await pilot.pause(0.1)
        assert isinstance(app.screen, RunsScreen)


async def test_app_started_on_a_run_shows_its_monitor(runs_dir):
    d = make_run(runs_dir, "20260101-000000-a")
    app = WorkbenchApp(runs_dir, run=d)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen), "the monitor")
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert isinstance(app.screen, RunsScreen)


async def test_open_recipe_screen_lists_recent_folder_and_shipped_files(tmp_path, runs_dir, monkeypatch):
    here = tmp_path / "here"
    here.mkdir()
    (here / "pyproject.toml").write_text("[project]\nname = 'x'\n")  # some other tool's toml: not offered
    local = here / "local.toml"
    local.write_text((RECIPES / "sft-tiny.toml").read_text().replace("../assets", str(ASSETS.parent)))
    mine = user_recipe(tmp_path)
    gone = tmp_path / "gone.toml"
    recent.remember(gone)  # remembered, then deleted
    recent.remember(mine)
    monkeypatch.chdir(here)
    app = WorkbenchApp(runs_dir)
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_for(pilot, lambda: "e Edit recipe" in screen_text(app), "the footer's e Edit recipe")
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, OpenRecipeScreen), "the open-recipe screen")
        await wait_for(pilot, lambda: "Shipped recipes" in screen_text(app), "the screen's lists")
        text = screen_text(app)
        assert text.index("Recent") < text.index("This folder") < text.index("Shipped recipes")
        assert text.index("recipes/mine.toml") < text.index("gone.toml")  # most recent first
        assert "(missing)" in text and "local.toml" in text and "recipes/grpo-tiny.toml" in text
        assert "pyproject.toml" not in text
        options = app.screen.query_one(OptionList)
        options.highlighted = options.get_option_index(str(gone))
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("no longer exists" in n for n in notices(app)), "the missing-file notice")
        assert isinstance(app.screen, OpenRecipeScreen) and "(missing)" not in screen_text(app)
        assert gone not in recent.recent_files()
        options = app.screen.query_one(OptionList)
        options.highlighted = options.get_option_index(str(local.resolve()))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen), "the editor")
        assert app.screen.recipe.path == local.resolve() and app.screen.recipe.stage == "sft"
        assert recent.recent_files()[0] == local.resolve()


async def test_open_a_recipe_file_from_the_command_palette(tmp_path, runs_dir, monkeypatch):
    path = user_recipe(tmp_path)
    app = WorkbenchApp(runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"Open a recipe")
        await wait_for(pilot, lambda: "Open a recipe file…" in screen_text(app), "the palette entry")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, OpenRecipeScreen), "the open-recipe screen")
        app.screen.query_one("#recipe-path", Input).value = str(path)  # a typed path
        app.screen.query_one("#recipe-path", Input).focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen), "the editor")
        assert app.screen.recipe.path == path.resolve()


async def test_a_file_that_is_not_toml_is_a_notice_not_an_editor(tmp_path, runs_dir):
    bad = tmp_path / "bad.toml"
    bad.write_text("[run\nstage = grpo\n")
    app = WorkbenchApp(runs_dir, recipe=bad)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        assert isinstance(app.screen, RunsScreen)
        assert any("not valid TOML" in n for n in notices(app))
    assert bad.read_text() == "[run\nstage = grpo\n"  # never overwritten with a skeleton
