"""Comparing runs in the TUI: space marks runs in the list (the mark survives refreshes), C opens the Compare
screen (a chart per metric with every run in the legend, x switched between step, time and tokens, metrics
chosen), the final values and the recipe diff; snapshots of the screen at 80x24 and 120x40."""
from __future__ import annotations

import json
from pathlib import Path

from textual.widgets import SelectionList

from tests.tui.conftest import make_run
from tests.tui.screen_text import notices, screen_text, wait_for
from tests.tui.test_runs_screen import wait_rows
from workbench.tui.screens.compare import CompareScreen, MetricsModal
from workbench.tui.widgets.charts import OverlayChart

FIXED = 1_767_225_600.0  # the clock the fake runs are written around: snapshots show no real time
A, B = "20260101-000000-grpo-lr1e-4", "20260102-000000-grpo-lr5e-5"


def two_runs(runs_dir: Path) -> tuple[Path, Path]:
    """Two GRPO runs that differ in learning rate (and so in their curves); B logs num_tokens, A does not."""
    a = make_run(runs_dir, A, steps=10, now=FIXED)
    b = make_run(runs_dir, B, steps=8, now=FIXED)
    for run, lr in ((a, "1e-4"), (b, "5e-5")):  # grpo-tiny's own is 1e-3
        recipe = run / "recipe.toml"
        assert "learning_rate = 1e-3" in recipe.read_text()
        recipe.write_text(recipe.read_text().replace("learning_rate = 1e-3", f"learning_rate = {lr}"))
    rows = [json.loads(line) for line in (b / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        if "loss" in row:
            row.update(reward=row["reward"] * 0.6, loss=row["loss"] * 1.5, kl=row["kl"] * 0.5,
                       num_tokens=512.0 * row["step"])
    (b / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return a, b


async def wait_compare(pilot) -> CompareScreen:
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.runs
                   and app.screen.query(OverlayChart), "a compare screen with runs")
    await pilot.pause(0.1)
    return app.screen


async def mark_both_and_compare(pilot) -> CompareScreen:
    await wait_rows(pilot, 2)
    await pilot.press("space", "down", "space", "C")
    return await wait_compare(pilot)


async def test_marked_runs_open_a_compare_screen_with_charts_table_and_recipe_diff(runs_dir, app_factory):
    two_runs(runs_dir)
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await mark_both_and_compare(pilot)
        assert [r.id for r in screen.runs] == [B, A]  # the list's order (newest first)
        charts = list(screen.query(OverlayChart))
        assert [c.key for c in charts] == ["reward", "loss", "kl"]  # one chart per shared headline metric
        assert all(c.series_keys() == ["grpo-lr5e-5", "grpo-lr1e-4"] for c in charts)
        assert all(c.series_colors == charts[0].series_colors for c in charts)  # a run's colour on every chart
        assert len(set(charts[0].series_colors)) == 2
        text = screen_text(app)
        assert text.count("● grpo-lr5e-5") >= 2 and text.count("● grpo-lr1e-4") >= 2  # legends of two charts
        assert "x: step" in text

        screen.query_one("#compare-body").scroll_end(animate=False)
        finals = ["reward", "0.48", "1"]  # final values, B then A
        await wait_for(pilot, lambda: finals in [line.split() for line in screen_text(app).splitlines()], "the finals")
        lines = screen_text(app).splitlines()
        assert any(line.split() == ["step", "8", "10"] for line in lines)
        assert any(line.split() == ["train.learning_rate", "5e-05", "0.0001"] for line in lines)
        assert not any(line.split()[:1] == ["train.max_steps"] for line in lines)  # same in both


async def test_x_switches_between_step_time_and_tokens(runs_dir, app_factory):
    two_runs(runs_dir)
    app = app_factory()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await mark_both_and_compare(pilot)
        reward = screen.query_one(OverlayChart)
        assert reward.points(60)[1][1][-1] == 10  # A's last step
        await pilot.press("x")
        await pilot.pause(0.1)
        assert screen.axis == "time"
        text = screen_text(app)
        assert "x: time since the first row" in text and "└0:01" in text and "0:10" in text  # seconds as m:ss
        await pilot.press("x")
        await pilot.pause(0.1)
        assert screen.axis == "tokens"
        assert "x: tokens (num_tokens) (by step: grpo-lr1e-4)" in screen_text(app)  # A logs no num_tokens
        assert reward.points(60)[0][1][-1] == 8 * 512.0  # B by its tokens
        await pilot.press("x")
        await pilot.pause(0.1)
        assert screen.axis == "step"


async def test_metrics_are_chosen_in_a_modal(runs_dir, app_factory):
    two_runs(runs_dir)
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await mark_both_and_compare(pilot)
        await pilot.press("m")
        await pilot.pause(0.1)
        assert isinstance(app.screen, MetricsModal)
        pick = app.screen.query_one(SelectionList)
        assert pick.selected == ["reward", "loss", "kl"]
        pick.deselect("kl")
        pick.select("grad_norm")
        await pilot.click("#apply")
        await pilot.pause(0.2)
        assert app.screen is screen
        assert [c.key for c in screen.query(OverlayChart)] == ["reward", "loss", "grad_norm"]
        assert "3 of 7 shared metrics" in screen_text(app)


async def test_marks_survive_refreshes_and_one_mark_plus_the_selection_compares(runs_dir, app_factory):
    two_runs(runs_dir)
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_rows(pilot, 2)
        await pilot.press("C")
        await pilot.pause(0.1)
        assert any("mark two or more runs" in n for n in notices(app))
        await pilot.press("down", "space")  # marks A
        make_run(runs_dir, "20260103-000000-new", now=FIXED)  # the table is rebuilt on the next refresh
        await wait_rows(pilot, 3)
        await pilot.pause(1.2)  # and refreshed in place once more
        marked = [line for line in screen_text(app).splitlines() if "✓" in line]
        assert len(marked) == 1 and A in marked[0]
        await pilot.press("up", "C")  # the marked one and the selected one
        screen = await wait_compare(pilot)
        assert [r.id for r in screen.runs] == [A, B]  # the marked one, then the selected one
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert "✓" in screen_text(app)  # back on the list, still marked


async def test_a_live_run_is_followed_while_compared(runs_dir, app_factory):
    make_run(runs_dir, A, steps=10, now=FIXED)
    live = make_run(runs_dir, B, steps=3, state="running", now=FIXED)  # on another host: stays running
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await mark_both_and_compare(pilot)
        assert screen.runs[0].live and not screen.runs[1].live
        with open(live / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"step": 4, "time": FIXED, "loss": 0.01, "reward": 0.9, "kl": 0.1}) + "\n")
        await wait_for(pilot, lambda: screen.runs[0].steps.step == 4, "step 4")
        assert screen.query_one(OverlayChart).points(60)[0][1][-1] == 4
        screen.query_one("#compare-body").scroll_end(animate=False)
        steps = ["step", "4", "10"]
        await wait_for(pilot, lambda: steps in [line.split() for line in screen_text(app).splitlines()], "step 4 shown")


async def test_R_writes_a_report_of_the_compared_runs(runs_dir, app_factory, monkeypatch):
    from workbench.tui import reporting

    asked = []
    monkeypatch.setattr(reporting, "write_report_in_background", lambda screen, runs: asked.append(runs))
    two_runs(runs_dir)
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await mark_both_and_compare(pilot)
        await pilot.press("R")
        await pilot.pause(0.1)
        assert [[rd.id for rd in runs] for runs in asked] == [[B, A]]


# -- snapshots (pytest-textual-snapshot; `pytest --snapshot-update` rewrites them after a deliberate change) ---
def snapshot_app(runs_dir):
    from workbench.tui.app import WorkbenchApp

    two_runs(runs_dir)
    return WorkbenchApp(runs_dir)


def test_compare_screen_snapshot_80x24(runs_dir, snap_compare):
    assert snap_compare(snapshot_app(runs_dir), terminal_size=(80, 24), run_before=mark_both_and_compare)


def test_compare_screen_snapshot_120x40(runs_dir, snap_compare):
    assert snap_compare(snapshot_app(runs_dir), terminal_size=(120, 40), run_before=mark_both_and_compare)
