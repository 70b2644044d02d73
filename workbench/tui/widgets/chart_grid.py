"""The monitor's charts: a scrollable grid of MetricChart widgets, one per chart of the run's plan (tui/chartplan.py),
as many columns and rows on screen as the terminal fits (cells at least CHART_W x CHART_H: 2x2 at 80x24, 3x3 at
120x40), the rest below (scroll). Charts are added as the run logs new keys.

Per chart: its EMA smoothing (``smooth``: the focused chart, or every chart when none has focus; default
DEFAULT_SMOOTHING) and the series it shows (``pick``: the user's choice replaces the plan's default keys and stays
across replans). A chart is refreshed only when what it shows changed: a finished run's grid costs nothing idle.
"""
from __future__ import annotations

import re

from textual.containers import Grid, VerticalScroll

from workbench.core.metrics import MetricsHistory
from workbench.tui import chartplan
from workbench.tui.widgets.charts import MetricChart

CHART_W, CHART_H = 38, 9  # the smallest chart cell
SMOOTHING = (0.0, 0.6, 0.8, 0.9, 0.95, 0.98, 0.99)  # the EMA weights smooth() steps through
DEFAULT_SMOOTHING = 0.9


def chart_id(spec_id: str) -> str:
    return "chart-" + re.sub(r"[^A-Za-z0-9_-]", "_", spec_id)


def step_smoothing(current: float, delta: int) -> float:
    """The next weight of SMOOTHING from current, delta steps up (smoother) or down."""
    i = min(range(len(SMOOTHING)), key=lambda k: abs(SMOOTHING[k] - current))
    return SMOOTHING[max(0, min(len(SMOOTHING) - 1, i + delta))]


class ChartGrid(VerticalScroll):
    DEFAULT_CSS = """
    ChartGrid { height: 1fr; scrollbar-size-vertical: 1; }
    ChartGrid > Grid { grid-size: 2; grid-gutter: 0 1; grid-rows: 9; height: auto; }
    ChartGrid MetricChart { height: 100%; min-height: 6; }
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.specs: dict[str, chartplan.ChartSpec] = {}  # chart widget id -> its spec
        self.picked: dict[str, list[str]] = {}  # chart widget id -> the series the user picked
        self.smoothing: dict[str, float] = {}  # chart widget id -> its EMA weight (default DEFAULT_SMOOTHING)
        self._shown: dict[str, tuple] = {}  # chart widget id -> what it was last shown (skip unchanged ones)
        self._fitted = 0  # charts the layout was fitted to

    def compose(self):
        yield Grid(id="chart-grid")

    # -- layout ----------------------------------------------------------------------------------------------
    def on_resize(self) -> None:
        self.fit()

    def fit(self) -> None:
        w, h = self.size.width, self.size.height
        if not w or not h:
            return
        n = len(self.charts())
        cols = max(1, w // CHART_W)
        rows = max(1, min(h // CHART_H, -(-n // cols)))  # a few charts get taller cells, not empty rows
        grid = self.query_one(Grid)
        grid.styles.grid_size_columns = cols
        # Row heights that add up to the viewport (e.g. 12 12 11 for 35 lines), repeated: a screenful shows whole
        # charts only, none cut at the bottom (a cut one would be drawn for two lines).
        size, extra = divmod(h, rows)
        grid.styles.grid_rows = " ".join(str(size + (i < extra)) for i in range(rows)) if size >= CHART_H \
            else str(CHART_H)

    # -- content ---------------------------------------------------------------------------------------------
    def charts(self) -> list[MetricChart]:
        return list(self.query_one(Grid).query(MetricChart))

    def sync(self, history: MetricsHistory, specs: list[chartplan.ChartSpec], notes: dict[str, str]) -> None:
        """Make the grid show these charts of this history, in this order; ``notes``: spec id -> why it is empty."""
        grid = self.query_one(Grid)
        wanted = {chart_id(s.id): s for s in specs}
        for chart in self.charts():
            if chart.id not in wanted:
                self.specs.pop(chart.id, None)
                self._shown.pop(chart.id, None)
                chart.remove()
        ids = [c.id for c in self.charts() if c.id in wanted]
        for i, (cid, spec) in enumerate(wanted.items()):
            if cid not in ids:
                chart = MetricChart(spec.title, spec.keys, id=cid)
                chart.can_focus = True
                chart.smoothing = self.smoothing.get(cid, DEFAULT_SMOOTHING)
                if i < len(ids):
                    grid.mount(chart, before=grid.query_one(f"#{ids[i]}"))
                else:
                    grid.mount(chart)
                ids.insert(i, cid)
            self.specs[cid] = spec
            self._show(grid.query_one(f"#{cid}", MetricChart), history, notes.get(spec.id, ""))
        if len(ids) != self._fitted:
            self._fitted = len(ids)
            self.fit()

    def _show(self, chart: MetricChart, history: MetricsHistory, note: str) -> None:
        spec = self.specs[chart.id]
        keys = self.picked.get(chart.id, spec.keys)
        with history.lock:
            present = chartplan.present(history, keys)
            versions = tuple(history.series[k].version for k in present)
        labels = dict(zip(present, chartplan.labels(spec.title, present)))
        look = (id(history), tuple(keys), spec.title, versions, note, tuple(labels.items()), chart.smoothing)
        if self._shown.get(chart.id) == look:
            return  # nothing new to draw: no refresh
        self._shown[chart.id] = look
        chart.labels, chart.note = labels, note
        chart.redraw(history, keys, spec.title, visible=chart.region.overlaps(self.region))

    def focused_chart(self) -> MetricChart | None:
        focused = self.screen.focused
        return focused if isinstance(focused, MetricChart) and focused in self.charts() else None

    def smooth(self, delta: int, history: MetricsHistory) -> float:
        """Step the focused chart's smoothing (every chart's when none has focus); returns the new weight."""
        focused = self.focused_chart()
        targets = [focused] if focused is not None else self.charts()
        base = focused.smoothing if focused is not None else (targets[0].smoothing if targets else DEFAULT_SMOOTHING)
        weight = step_smoothing(base or 0.0, delta)
        for chart in targets:
            self.smoothing[chart.id] = chart.smoothing = weight
            chart.refresh()
        return weight

    def pick(self, chart: MetricChart, keys: list[str], history: MetricsHistory) -> None:
        self.picked[chart.id] = list(keys)
        self._shown.pop(chart.id, None)
        self._show(chart, history, chart.note)
