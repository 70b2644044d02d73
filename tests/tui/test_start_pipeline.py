"""Starting a pipeline from the TUI: p on the runs list opens the folder picker, which shows a folder's stages and
problems and starts it through core.pipeline (the pipeline runner and the fake trainer are real processes, chosen
through the runner's test seam); code it would run asks for consent first, as --allow-code does in the CLI."""
from __future__ import annotations

import json

import pytest
from textual.widgets import DataTable

from tests.core.fakes import FAKE
from tests.core.test_pipeline_lifecycle import leave_nothing, make_folder  # noqa: F401 (fixture)
from tests.tui.screen_text import notices, screen_text, wait_for
from tests.tui.test_runs_pipelines import rows_text
from tests.tui.test_runs_screen import wait_rows
from workbench.core import pipeline, trust
from workbench.core.pipeline_runner import TEST_TRAINER_ENV
from workbench.core.rundir import FINAL_STATES
from workbench.tui.screens.modals import ConfirmModal
from workbench.tui.screens.runs import RunsScreen
from workbench.tui.screens.start_pipeline import StartPipelineScreen

SIZE = (100, 30)


@pytest.fixture
def fake_trainer(monkeypatch, tmp_path):
    monkeypatch.setenv(TEST_TRAINER_ENV, json.dumps({"trainer": str(FAKE), "modes": {}}))  # every stage succeeds
    monkeypatch.setenv("FAKE_STEP_S", "0.02")
    monkeypatch.setattr(trust, "approvals_path", lambda: tmp_path / "approved-code.json")


async def open_picker(pilot, folder) -> StartPipelineScreen:
    await pilot.press("p")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, StartPipelineScreen), "the folder picker")
    picker = pilot.app.screen
    picker.query_one("#pipeline-path").focus()
    await pilot.press(*str(folder))
    return picker


async def test_p_picks_a_folder_shows_its_stages_and_starts_it(runs_dir, app_factory, tmp_path, fake_trainer,
                                                               leave_nothing):  # noqa: F811
    folder = make_folder(tmp_path / "mine", ("first", 3), ("second", 3))
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        picker = await open_picker(pilot, folder)
        picker.show(folder)  # the details, as the cursor on a listed folder shows them
        await wait_for(pilot, lambda: "no problems" in screen_text(app), "the stages")
        text = screen_text(app)
        assert "01-first.toml" in text and "02-second.toml" in text and "grpo" in text
        assert "builtin:tiny-lm" in text and "run:previous" in text
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), "the runs list")
        (pd, st), = pipeline.list_pipelines(runs_dir)
        assert any(f"pipeline {pd.id} started" in n for n in notices(app))
        # the fake stages take ~0.1 s each, so under load the stage rows may already be there: the pipeline's row leads
        await wait_for(pilot, lambda: app.screen.query_one(DataTable).row_count >= 1, "the pipeline's row")
        assert rows_text(app)[0] == pd.id, "the pipeline's row"
        await wait_for(pilot, lambda: pipeline.pipeline_status(pd)["state"] in FINAL_STATES, "the pipeline", timeout=60)
        assert pipeline.pipeline_status(pd)["state"] == "completed"
        await wait_rows(pilot, 3)  # its two stage runs under it
        assert [r.startswith("└ ") for r in rows_text(app)] == [False, True, True]
        for proc in app.launched:
            proc.wait(timeout=10)


async def test_a_folder_with_problems_lists_them_and_does_not_start(runs_dir, app_factory, tmp_path, fake_trainer):
    folder = make_folder(tmp_path / "bad", ("first", 3))
    (folder / "01-first.toml").write_text((folder / "01-first.toml").read_text().replace(
        "builtin:tiny-lm", "run:previous").replace("max_steps = 3", "max_stepz = 3"))
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        await open_picker(pilot, folder)
        await pilot.press("enter")
        await wait_for(pilot, lambda: "to fix before it can start" in screen_text(app), "the problems")
        text = screen_text(app)
        assert "the first stage has no previous stage" in text and "max_stepz" in text
        assert isinstance(app.screen, StartPipelineScreen) and not pipeline.list_pipelines(runs_dir)
        assert any("not started" in n for n in notices(app))


async def test_reward_code_asks_first_like_allow_code(runs_dir, app_factory, tmp_path, fake_trainer,
                                                      leave_nothing):  # noqa: F811
    folder = make_folder(tmp_path / "code", ("first", 3))
    (tmp_path / "my_rewards.py").write_text("def short(completions, **kw):\n    return [0.0 for _ in completions]\n")
    (folder / "01-first.toml").write_text((folder / "01-first.toml").read_text().replace(
        'funcs = ["format"]', f'funcs = ["{tmp_path / "my_rewards.py"}:short"]'))
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        await open_picker(pilot, folder)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "the consent dialog")
        assert "my_rewards.py" in screen_text(app) and "def short" in screen_text(app)
        await pilot.press("escape")  # no: nothing starts
        await pilot.pause(0.2)
        assert not pipeline.list_pipelines(runs_dir) and isinstance(app.screen, StartPipelineScreen)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "the consent dialog again")
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), "the runs list")
        (pd, _st), = pipeline.list_pipelines(runs_dir)
        assert not trust.unapproved(pipeline.load_pipeline(folder, runs_dir).recipes[0], runs_dir)
        await wait_for(pilot, lambda: pipeline.pipeline_status(pd)["state"] in FINAL_STATES, "the pipeline", timeout=60)
        for proc in app.launched:
            proc.wait(timeout=10)
