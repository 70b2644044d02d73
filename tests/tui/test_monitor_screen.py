"""The run monitor on fake run dirs: progress, stage-appropriate charts, samples by step and filter, log, recipe."""
from __future__ import annotations

import asyncio
import json

from tests.tui.conftest import make_run
from tests.tui.screen_text import screen_text, wait_for
from workbench.tui.screens.monitor import MonitorScreen
from workbench.tui.widgets.charts import MetricChart

SIZE = (80, 24)


async def open_monitor(app, pilot, run_dir) -> MonitorScreen:
    app.open_monitor(run_dir)
    await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen) and app.screen.history.step
                   and not app.screen._polling, "the monitor to read the run")
    return app.screen


async def test_progress_state_and_grpo_charts(runs_dir, app_factory):
    d = make_run(runs_dir, "20260101-000000-g", state="completed", steps=10, max_steps=10)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_monitor(app, pilot, d)
        text = screen_text(app)
        assert "COMPLETED" in text and "10/10" in text and "100%" in text
        assert "reward 1" in text  # the headline value of the last row
        titles = [c.title for c in screen.query(MetricChart)]
        assert titles[:3] == ["reward", "loss", "KL"]
        reward = screen.query_one("#chart-reward", MetricChart)
        assert reward.series_keys() == ["reward"]  # the total; the per-function rewards are in its series picker
        assert [c.title for c in screen.query(MetricChart)][3:5] == ["grad_norm", "learning_rate"]  # other keys


async def test_sft_run_charts_loss_token_accuracy_and_learning_rate(runs_dir, app_factory):
    d = make_run(runs_dir, "20260101-000000-s", stage="sft", steps=4, max_steps=8, state="running")
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_monitor(app, pilot, d)
        titles = [c.title for c in screen.query(MetricChart)][:3]
        assert titles == ["loss", "token accuracy", "learning rate"]
        assert screen.query_one("#chart-token_accuracy", MetricChart).series_keys() == ["mean_token_accuracy"]
        assert "4/8" in screen_text(app)


async def test_new_rows_are_picked_up_live(runs_dir, app_factory):
    d = make_run(runs_dir, "20260101-000000-live", state="running", steps=3, max_steps=10)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_monitor(app, pilot, d)
        with open(d / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"step": 4, "time": 1.0, "loss": 0.1, "reward": 0.9}) + "\n")
            f.write('{"step": 5, "loss": 0.0')  # a torn line waits for its newline
        await wait_for(pilot, lambda: screen.history.step == 4 and "4/10" in screen_text(app), "step 4 on screen")


async def test_samples_by_step_with_navigation_and_filters(runs_dir, app_factory):
    d = make_run(runs_dir, "20260101-000000-g", steps=3, max_steps=3)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await open_monitor(app, pilot, d)
        await pilot.press("2")
        await wait_for(pilot, lambda: "step 3  (3/3)" in screen_text(app), "the last step's samples")
        text = screen_text(app)
        assert "step 3  (3/3)" in text and "4/4 completions" in text
        assert "What is 3 + 0?" in text
        # model output is shown literally, never parsed as markup
        assert "[bold]hard[/bold]" in text and "junk 3-0 [red]x" in text
        await pilot.press("left_square_bracket")
        await pilot.pause(0.05)
        text = screen_text(app)
        assert "step 2  (2/3)" in text and "What is 2 + 0?" in text
        await pilot.press("f")  # format failures only
        await pilot.pause(0.05)
        text = screen_text(app)
        assert "2/4 completions" in text and "filter: format failures" in text
        assert "junk 2-0" in text and "<reasoning>" not in text
        await pilot.press("f")  # correct only
        await pilot.pause(0.05)
        text = screen_text(app)
        assert "filter: correct only" in text and "junk" not in text
        await pilot.press("right_square_bracket")
        await pilot.pause(0.05)
        assert "step 3  (3/3)" in screen_text(app)


async def test_log_pane_tails_stdout(runs_dir, app_factory):
    d = make_run(runs_dir, "20260101-000000-g", log_lines=3)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await open_monitor(app, pilot, d)
        await pilot.press("3")
        await wait_for(pilot, lambda: "log line 2" in screen_text(app), "the log's lines")
        text = screen_text(app)
        assert "progress 100%" in text and "progress 10%" not in text  # carriage-return bars collapse


async def test_recipe_pane_and_stop_of_a_finished_run(runs_dir, app_factory):
    d = make_run(runs_dir, "20260101-000000-g")
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await open_monitor(app, pilot, d)
        await pilot.press("4")
        await wait_for(pilot, lambda: 'stage = "grpo"' in screen_text(app), "the recipe")
        await pilot.press("s")
        assert not (d / "stop.request").exists()  # nothing to stop


async def test_show_command_of_a_run(runs_dir, app_factory):
    from workbench.tui.screens.modals import MessageModal

    d = make_run(runs_dir, "20260101-000000-cmd", steps=3, max_steps=3)
    (d / "launch.json").write_text(json.dumps({"argv": ["python", "-m", "workbench.train", str(d)],
                                               "env": {"OMP_NUM_THREADS": "1"}, "files": []}))
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await open_monitor(app, pilot, d)
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, MessageModal), "the command")
        assert "-m workbench.train" in app.screen.text and "OMP_NUM_THREADS=1" in app.screen.text


async def test_run_dir_deleted_while_watched(runs_dir, app_factory):
    import shutil

    d = make_run(runs_dir, "20260101-000000-gone", state="running", steps=3, max_steps=10)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_monitor(app, pilot, d)
        shutil.rmtree(d)
        for _ in range(6):  # several polls of a directory that is gone
            await pilot.pause(0.3)
        assert app.screen is screen and app.is_running
        assert "3/10" in screen_text(app), "what was read stays on screen"
        await pilot.press("escape")
        await pilot.pause(0.5)
        assert "20260101-000000-gone" not in screen_text(app), "the runs list drops it"


async def test_big_run_shows_an_overview_then_the_exact_history_then_opens_from_the_saved_view(
        runs_dir, app_factory, monkeypatch, tmp_path):
    """A metrics file bigger than OVERVIEW_BYTES: sampled overview first, exact fold in chunks, view saved; the
    second open starts from the saved view and reads only what was appended since."""
    import workbench.tui.screens.monitor as monitor_mod
    from workbench.core.metrics import _view_file

    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(monitor_mod, "OVERVIEW_BYTES", 64 * 1024)
    monkeypatch.setattr(monitor_mod, "SAVE_VIEW_BYTES", 64 * 1024)
    monkeypatch.setattr(monitor_mod, "CHUNK", 16 * 1024)
    monkeypatch.setattr(monitor_mod, "CATCH_UP_S", 0.0)  # one chunk per poll: the overview stays up a while
    d = make_run(runs_dir, "20260101-000000-big", state="completed", steps=4, max_steps=30_000)
    with open(d / "metrics.jsonl", "a") as f:
        for s in range(5, 30_001):
            f.write(json.dumps({"step": s, "time": float(s), "loss": 40.0 if s == 12_345 else 1.0 / s,
                                "reward": s / 30_000, "kl": 0.01}) + "\n")
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        app.open_monitor(d)
        seen_overview = False
        for _ in range(1000):  # not pilot.pause: it waits for an idle app, which a catching-up monitor is not
            await asyncio.sleep(0.01)
            screen = app.screen
            if isinstance(screen, MonitorScreen) and screen.overview is not None:
                seen_overview = True
                assert screen.shown.step == 30_000  # the overview reads the file's end at once
            if isinstance(screen, MonitorScreen) and screen.history.step == 30_000 and screen.overview is None:
                break  # the exact history has caught up
        assert seen_overview
        xs, ys = screen.history.points("loss")
        assert max(ys) == 40.0 and xs[ys.index(40.0)] == 12_345.0  # the exact fold keeps the spike
        assert screen.history.step == 30_000 and len(xs) <= 2 * 1024
        await pilot.press("q")
    assert _view_file(d / "metrics.jsonl").exists()
    with open(d / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 30_001, "time": 1.0, "loss": 0.5}) + "\n")
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        app.open_monitor(d)
        for _ in range(500):
            await asyncio.sleep(0.01)
            screen = app.screen
            if isinstance(screen, MonitorScreen) and screen.history.step == 30_001:
                break
        assert screen.history.step == 30_001 and screen.overview is None  # from the saved view, no overview
        assert max(screen.history.points("loss")[1]) == 40.0


async def test_state_line_shows_the_stages_declared_headline(runs_dir, app_factory):
    # DPO's headline is loss and rewards/accuracies (core/stages.py), not GRPO's reward / loss / kl.
    d = make_run(runs_dir, "20260101-000000-d", stage="dpo", steps=3, max_steps=6, state="running")
    with open(d / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 4, "time": 1.0, "loss": 0.25, "rewards/accuracies": 0.75, "kl": 9.0}) + "\n")
    app = app_factory()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_monitor(app, pilot, d)
        await wait_for(pilot, lambda: screen.history.step == 4, "step 4")
        line = str(screen.query_one("#run-state").render())
        assert "loss 0.25" in line and "rewards/accuracies 0.75" in line, line
        assert "kl" not in line  # logged, but not DPO's headline
