"""The runs screen: lists runs from the runs dir, opens, deletes (not live ones), duplicates, starts prepared runs."""
from __future__ import annotations

from textual.widgets import DataTable

from tests.tui.conftest import make_run
from tests.tui.screen_text import notices, screen_text, wait_for
from workbench.core.stages import STAGES
from workbench.tui.screens.editor import EditorScreen
from workbench.tui.screens.monitor import MonitorScreen
from workbench.tui.screens.runs import RunsScreen

SIZE = (80, 24)


async def wait_rows(pilot, n: int) -> DataTable:
    await wait_for(pilot, lambda: pilot.app.screen.query_one(DataTable).row_count == n, f"{n} rows")
    return pilot.app.screen.query_one(DataTable)


async def test_lists_runs_newest_first_with_state_and_progress(runs_dir, app_factory):
    make_run(runs_dir, "20260101-000000-old", state="failed", steps=3, max_steps=10)
    make_run(runs_dir, "20260102-000000-new", state="completed", steps=10, max_steps=10)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await wait_rows(pilot, 2)
        text = screen_text(app)
        assert text.index("20260102-000000-new") < text.index("20260101-000000-old")
        assert "completed" in text and "failed" in text
        assert "10/10" in text and "3/10" in text


async def test_empty_runs_dir_says_how_to_start(runs_dir, app_factory):
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "Press n" in screen_text(app), "the empty list's hint")


async def test_new_run_appears_while_open(runs_dir, app_factory):
    make_run(runs_dir, "20260101-000000-a")
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await wait_rows(pilot, 1)
        make_run(runs_dir, "20260103-000000-b", state="running")
        await wait_rows(pilot, 2)  # the 1 s refresh picks it up
        assert "running" in screen_text(app)


async def test_enter_opens_the_monitor(runs_dir, app_factory):
    make_run(runs_dir, "20260101-000000-a")
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await wait_rows(pilot, 1)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen), "the monitor")
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)


async def test_delete_asks_then_removes_a_finished_run(runs_dir, app_factory):
    d = make_run(runs_dir, "20260101-000000-a")
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await wait_rows(pilot, 1)
        await pilot.press("d")
        await pilot.pause(0.1)
        assert "Delete run 20260101-000000-a?" in screen_text(app)
        await pilot.press("y")
        await wait_rows(pilot, 0)
        assert not d.exists()


async def test_delete_refuses_a_live_run(runs_dir, app_factory):
    d = make_run(runs_dir, "20260101-000000-live", state="running")
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await wait_rows(pilot, 1)
        await pilot.press("d")
        await pilot.pause(0.1)
        assert any("stop it first" in n for n in notices(app))
        assert d.exists()


async def test_stop_asks_first_and_names_the_steps_since_the_last_checkpoint(runs_dir, app_factory):
    """escape (or No) keeps the run running; y (or Stop) writes the stop request."""
    from workbench.tui.screens.modals import ConfirmModal

    d = make_run(runs_dir, "20260101-000000-live", state="running", steps=38, max_steps=300)
    (d / "checkpoints" / "checkpoint-30").mkdir(parents=True)
    (d / "checkpoints" / "checkpoint-30" / "trainer_state.json").write_text('{"global_step": 30}')
    (d / "checkpoints" / "checkpoint-35").mkdir()  # half written (no trainer_state.json): a resume skips it
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await wait_rows(pilot, 1)
        await pilot.press("s")
        await pilot.pause(0.1)
        assert isinstance(app.screen, ConfirmModal)
        assert "Stop run 20260101-000000-live?" in screen_text(app)
        question = app.screen.question
        assert "Step 38 of 300; last complete checkpoint: step 30, 8 steps ago." in question
        assert "A checkpoint is written at the stop" in question
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert isinstance(app.screen, RunsScreen) and not (d / "stop.request").exists(), "cancel keeps it running"
        await pilot.press("s")
        await pilot.pause(0.1)
        await pilot.press("enter")  # the focused button is No
        await pilot.pause(0.1)
        assert not (d / "stop.request").exists()
        await pilot.press("s")
        await pilot.pause(0.1)
        await pilot.press("y")
        await pilot.pause(0.1)
        assert (d / "stop.request").exists()
        assert any("stop requested" in n for n in notices(app))


async def test_stop_of_a_run_without_a_checkpoint_says_so(runs_dir, app_factory):
    make_run(runs_dir, "20260101-000000-live", state="running", steps=12, max_steps=300)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await wait_rows(pilot, 1)
        await pilot.press("s")
        await pilot.pause(0.1)
        question = app.screen.question
        assert "Step 12 of 300; no checkpoint yet." in question and "so all 12 steps are kept" in question


async def test_at_80_columns_state_step_reward_and_age_are_whole(runs_dir, app_factory):
    """The run id gives way (elided in the middle, its name kept), never the state or the progress."""
    make_run(runs_dir, "20260101-083012-grpo-arith-lr1e-4-b004", steps=1200, max_steps=1200)
    make_run(runs_dir, "20260101-090000-sft-tiny", state="failed", stage="sft", steps=38, max_steps=300)
    make_run(runs_dir, "20260101-100000-grpo-live", state="running", steps=30, max_steps=300)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await wait_rows(pilot, 3)
        lines = screen_text(app).splitlines()
        header = next(line for line in lines if line.split()[:2] == ["run", "state"])
        assert {"step", "reward", "age"} <= set(header.split())
        rows = {line.split()[0]: line.split() for line in lines if line.split() and line.split()[0][:4] == "2026"}
        long_id = next(k for k in rows if k.endswith("lr1e-4-b004"))
        assert "…" in long_id
        assert rows[long_id][1:3] == ["completed", "1200/1200"]
        assert rows["20260101-090000-sft-tiny"][1:3] == ["failed", "38/300"]
        assert rows["20260101-100000-grpo-live"][1:3] == ["running", "30/300"]
        assert all(len(line) <= 80 for line in lines)
        await wait_for(pilot, lambda: screen_text(app).splitlines()[-1].strip(), "the footer")  # after the first refresh
        footer = screen_text(app).splitlines()[-1]
        assert "Open" in footer and "Stop" in footer and footer.rstrip().endswith("^p palette"), footer
        await pilot.resize_terminal(120, 24)
        wide = ["run", "state", "stage", "model", "step", "reward", "loss", "age", "time"]
        await wait_for(pilot, lambda: any(line.split() == wide for line in screen_text(app).splitlines()),
                       "the header of every column at 120")
        assert "20260101-083012-grpo-arith-lr1e-4-b004" in screen_text(app), "whole at 120"


async def test_duplicate_opens_an_unsaved_editor_on_the_runs_recipe(runs_dir, app_factory):
    make_run(runs_dir, "20260101-000000-a")
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await wait_rows(pilot, 1)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen), "the editor")
        assert app.screen.recipe.path is None
        assert app.screen.recipe.get("train.num_generations") == 4
        assert "not saved yet" in screen_text(app)


async def test_prepared_run_starts_with_enter(runs_dir, app_factory, monkeypatch):
    """A run made by `workbench prepare`: listed as prepared (no clock), `s` explains, enter starts it."""
    import sys

    from tests.core.fakes import FAKE, recipe_for, wait_until
    from workbench.core import supervisor
    from workbench.core.launch import LaunchPlan

    monkeypatch.setattr(supervisor, "launch_plan", lambda recipe, run_dir: LaunchPlan(
        [sys.executable, str(FAKE), "succeed", str(run_dir)], {"WORKBENCH_RUN_DIR": str(run_dir)}))
    rd = supervisor.prepare(recipe_for("succeed"), runs_dir)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await wait_rows(pilot, 1)
        assert "prepared" in screen_text(app)
        await pilot.press("s")
        await pilot.pause(0.1)
        assert any("never started" in n for n in notices(app))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen), "the monitor of the started run")
        wait_until(lambda: supervisor.status(rd)["state"] == "completed", timeout=20, what="the started run")


async def test_new_run_picks_a_stage_and_opens_its_template(runs_dir, app_factory):
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await pilot.pause(0.1)
        lines = screen_text(app).splitlines()
        assert any("which stage" in line for line in lines)
        starts = {line.index(title) for line in lines for title in ("GRPO (", "Supervised", "Distillation (off")
                  if title in line}
        assert len(starts) == 1, "the titles start in one column, whatever the name's length"
        await pilot.press(*["down"] * list(STAGES).index("sft"), "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen), "the editor")
        assert app.screen.recipe.stage == "sft"


async def test_command_palette_offers_new_runs(runs_dir, app_factory):
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause(0.1)
        await pilot.press(*"new sft")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen), "the editor")
        assert app.screen.recipe.stage == "sft"
