"""The monitor's chart grid: EMA smoothing with [ and ], the series picker (m), legends that fit at 80x24 and
120x40, why an empty chart is empty, one chart per logged key and no key twice, and a finished run's slow polling."""
from __future__ import annotations

import json

import pytest

from tests.tui.conftest import make_run
from tests.tui.screen_text import screen_text, wait_for
from tests.tui.test_monitor_screen import open_monitor
from workbench.core.metrics import MetricsHistory
from workbench.tui import chartplan
from workbench.tui.screens.monitor import MonitorScreen
from workbench.tui.screens.series_picker import SeriesPicker
from workbench.tui.widgets.chart_grid import CHART_H, ChartGrid
from workbench.tui.widgets.charts import MetricChart, downsample, ema


def add_reward_functions(d, steps: int) -> None:
    """Per-function rewards with long names (the legend's hard case) on every row."""
    rows = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
    for r in rows:
        if "reward" in r:
            r.update({"rewards/correctness_of_answer/mean": 0.1, "rewards/strict_format_check/mean": 0.2})
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def chart_rows(app, chart: MetricChart) -> list[str]:
    """The screen lines a chart covers, cut to its columns (and the column right of it, the gutter)."""
    lines = screen_text(app).splitlines()
    r = chart.region
    return [lines[y][r.x:r.x + r.width + 1].ljust(r.width + 1) if y < len(lines) else ""
            for y in range(r.y, r.y + r.height)]


async def test_smoothing_keys_and_the_series_picker(runs_dir, app_factory):
    d = make_run(runs_dir, "20260101-000000-g", steps=30, max_steps=30)
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_monitor(app, pilot, d)
        await pilot.pause(0.2)
        loss = screen.query_one("#chart-loss", MetricChart)
        raw_ys = [1.0 / s for s in range(1, 31)]
        assert loss.smoothing == 0.9  # on by default
        assert loss.points(loss.size.width)[0][2] == pytest.approx(ema(raw_ys, 0.9))
        assert loss.raw_points(loss.size.width)[0][2] == raw_ys  # drawn faint behind it
        assert "ema 0.9" in screen_text(app)
        await pilot.press("right_square_bracket")  # smoother, every chart (none has focus)
        assert loss.smoothing == 0.95 and screen.query_one("#chart-reward", MetricChart).smoothing == 0.95
        for _ in range(6):
            await pilot.press("left_square_bracket")
        await pilot.pause(0.1)
        assert loss.smoothing == 0.0 and loss.points(loss.size.width)[0][2] == raw_ys  # the values themselves
        assert "└1" in chart_rows(app, loss)[-1] and "raw" in chart_rows(app, loss)[-1]
        loss.focus()  # only the focused chart changes
        await pilot.press("right_square_bracket")
        assert loss.smoothing == 0.6 and screen.query_one("#chart-reward", MetricChart).smoothing == 0.0

        reward = screen.query_one("#chart-reward", MetricChart)
        reward.focus()
        await pilot.press("m")
        await pilot.pause(0.1)
        picker = app.screen
        assert isinstance(picker, SeriesPicker)
        assert picker.keys[:3] == ["reward", "rewards/correctness/mean", "rewards/format/mean"]  # the chart's first
        picker.query_one("SelectionList").select("rewards/format/mean")
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert reward.series_keys() == ["reward", "rewards/format/mean"]
        head = chart_rows(app, reward)[0]
        assert head.startswith("reward") and "● total" in head and "● format" in head
        assert "rewards/format/mean" not in head  # abbreviated in the legend


async def test_empty_charts_say_why(runs_dir, app_factory):
    d = make_run(runs_dir, "20260101-000000-k", state="running", steps=0, max_steps=100, samples=False)
    recipe = (d / "recipe.toml").read_text()
    recipe = recipe.replace("beta = 0.04", "beta = 0.0").replace("logging_steps = 1", "logging_steps = 5")
    (d / "recipe.toml").write_text(recipe + "\n[eval]\nevery_steps = 50\n")
    app = app_factory()

    def says(screen, chart_id: str) -> str:
        return " ".join(" ".join(chart_rows(app, screen.query_one(chart_id, MetricChart))).split())

    async with app.run_test(size=(120, 40)) as pilot:
        app.open_monitor(d)
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen) and app.screen.query("#chart-loss"),
                       "the monitor's charts")
        screen = app.screen
        waiting = "loss waiting for the first log (logging_steps = 5)"
        await wait_for(pilot, lambda: says(screen, "#chart-loss") == waiting, repr(waiting))
        with open(d / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"step": 1, "time": 1.0, "loss": 0.5, "reward": 0.1, "grad_norm": 1.0}) + "\n")
        await wait_for(pilot, lambda: screen.history.rows, "the run's rows")
        kl = "KL KL is logged only when beta > 0 (this recipe: beta = 0)"
        await wait_for(pilot, lambda: says(screen, "#chart-KL") == kl, repr(kl))  # redrawn at most every CHART_EVERY
        assert says(screen, "#chart-eval") == "held-out eval no eval yet: [eval] runs every 50 steps"
        assert "waiting" not in says(screen, "#chart-loss")


def test_empty_reasons_of_a_finished_run_and_the_recipe_facts(tmp_path):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text('[run]\nstage = "grpo"\n[train]\nmax_steps = 10\n')
    facts = chartplan.RecipeFacts.of(recipe, "grpo")
    assert facts == chartplan.RecipeFacts(beta=0.0, logging_steps=1, eval_every=None)  # trl's GRPO beta
    assert chartplan.RecipeFacts.of(recipe, "rloo").beta == 0.05
    h = MetricsHistory()
    kl = next(s for s in chartplan.plan("grpo", h, facts) if s.title == "KL")
    assert chartplan.empty_reason(kl, "grpo", h, facts, live=False) == "this run logged no metrics"
    h.add([{"step": 1, "loss": 1.0}])
    assert "beta > 0" in chartplan.empty_reason(kl, "grpo", h, facts, live=False)
    with_beta = chartplan.RecipeFacts(beta=0.04)
    assert chartplan.empty_reason(kl, "grpo", h, with_beta, live=False) == "this run logged no kl, objective/kl"


def test_one_chart_per_key_and_no_key_twice():
    keys = ["reward", "rewards/format/mean", "rewards/format/std", "loss", "kl", "grad_norm", "learning_rate",
            "entropy", "eval/accuracy", "eval/prompts", "train_runtime"]
    h = MetricsHistory()
    h.add([{"step": 1, **{k: 1.0 for k in keys}}, {"step": 2, **{k: 2.0 for k in keys}}])
    specs = chartplan.plan("grpo", h)
    assert [s.title for s in specs] == ["reward", "loss", "KL", "held-out eval", "grad_norm", "learning_rate",
                                        "entropy", "rewards/format/std"]
    on_charts = [k for s in specs for e in s.keys + s.options for k in e.split("|")]
    assert len(on_charts) == len(set(on_charts)), "a key on two charts"
    assert "train_runtime" not in on_charts and "eval/prompts" not in on_charts
    chart = MetricChart("kl", ["kl", "kl|objective/kl", "kl"])
    chart.history = h
    assert chart.series_keys() == ["kl"]
    assert chartplan.labels("reward", ["reward", "rewards/format/mean"]) == ["total", "format"]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_legends_never_overwrite_a_neighbour(runs_dir, app_factory, size):
    d = make_run(runs_dir, "20260101-000000-g", steps=20, max_steps=20)
    add_reward_functions(d, 20)
    app = app_factory()
    async with app.run_test(size=size) as pilot:
        screen = await open_monitor(app, pilot, d)
        await pilot.pause(0.2)
        grid = screen.query_one(ChartGrid)
        reward = screen.query_one("#chart-reward", MetricChart)
        every = chartplan.present(screen.history, ["reward"] + grid.specs[reward.id].options)
        assert len(every) == 5
        grid.pick(reward, every, screen.history)  # all five series: the longest legend
        await pilot.pause(0.3)
        visible = [c for c in grid.charts() if c.region.height >= CHART_H and c.region.bottom <= size[1] - 1]
        assert len(visible) == min(len(grid.charts()), 4 if size == (80, 24) else 9)  # 2x2 / 3x3, all whole
        assert len({c.region.x for c in visible}) == (2 if size == (80, 24) else 3)  # columns
        for chart in visible:
            rows = chart_rows(app, chart)
            assert rows[0].startswith(chart.title), (chart.title, rows[0])  # its title line intact
            if chart.region.right < size[0] - 2:  # the gutter column to its right stays blank
                assert all(row[-1] == " " for row in rows), (chart.title, rows)
        head = "".join(chart_rows(app, reward)[:3])
        for label in ("total", "format", "correctness", "correctness_of_answer", "strict_format_check"):
            assert f"● {label}" in head or "more" in head


def test_downsample_keeps_the_first_and_the_last_point():
    xs = list(range(1, 1001))
    ys = [float(x % 7) for x in xs]
    ox, oy = downsample(xs, ys, 20)
    assert ox[0] == 1 and ox[-1] == 1000 and len(ox) <= 40  # the axis reaches the newest step


async def test_a_finished_run_is_polled_slowly_until_it_is_resumed(runs_dir, app_factory, monkeypatch):
    import workbench.tui.screens.monitor as monitor_mod

    monkeypatch.setattr(monitor_mod, "FINISHED_POLL_EVERY", 0.6)
    d = make_run(runs_dir, "20260101-000000-done", state="completed", steps=3, max_steps=6)
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_monitor(app, pilot, d)
        await wait_for(pilot, lambda: screen._slow and screen._poll_timer._interval == 0.6, "the slow poll")
        status = json.loads((d / "status.json").read_text())
        status.update(state="running", ended=None)  # resumed (on another host: nothing settles it here)
        (d / "status.json").write_text(json.dumps(status))
        with open(d / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"step": 4, "time": 1.0, "loss": 0.1}) + "\n")
        await wait_for(pilot, lambda: screen.history.step == 4, "step 4")
        assert screen.history.step == 4 and not screen._slow
        assert screen._poll_timer._interval == monitor_mod.POLL_EVERY


async def test_charts_redraw_less_often_when_redrawing_costs_more_than_their_share(runs_dir, app_factory,
                                                                                   monkeypatch):
    import workbench.tui.screens.monitor as monitor_mod

    monkeypatch.setattr(monitor_mod, "CHART_CPU", 1e-9)  # any redraw costs more than this
    d = make_run(runs_dir, "20260101-000000-live", state="running", steps=3, max_steps=50)
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_monitor(app, pilot, d)
        assert screen._chart_every == monitor_mod.CHART_EVERY
        for step in (4, 5):
            with open(d / "metrics.jsonl", "a") as f:
                f.write(json.dumps({"step": step, "time": 1.0, "loss": 0.1, "reward": 0.5}) + "\n")
            for _ in range(100):  # the second waits up to CHART_EVERY_MAX
                await pilot.pause(0.1)
                if axis_end(screen.query_one("#chart-loss", MetricChart)) == str(step):
                    break
        assert screen._chart_every == monitor_mod.CHART_EVERY_MAX  # stretched to the longest interval
        assert axis_end(screen.query_one("#chart-loss", MetricChart)) == "5"  # yet every row is drawn


def axis_end(chart: MetricChart) -> str:
    """The last step on the chart's x-axis line as last drawn."""
    return "".join(seg.text for seg in chart._drawn[1][-1]).split()[-1] if chart._drawn else ""
