"""Compare runs: one chart per metric with every run overlaid, the final values and evals, the recipe diff.

Opened from the runs list (space marks runs, C compares). What is compared is decided in workbench.core.compare
(shared metrics, final values, evals, recipe diff); this screen only lays it out. The runs are read in a thread
worker; while any of them is live, what they append is folded in once a second (only while this screen shows).

Layout (must read at 80x24): a one-line bar (the x axis and what is charted), then one scrolling page: the charts
in a grid (2 columns on an 80-column terminal, 3 from 110), the runs with their colours and full ids, the table
of final values, the recipe diff. Each run keeps one colour and one short label (core.compare.short_labels)
on every chart and in both tables.
"""
from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Header, Label, SelectionList, Static
from textual.worker import Worker, WorkerState

from workbench.core import compare, summary, supervisor
from workbench.core.rundir import LIVE_STATES, RunDir
from workbench.tui.widgets.charts import COLORS, OverlayChart

POLL_EVERY = 1.0  # seconds between reads of live runs


def fmt_tokens(v: float) -> str:
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.3g}{unit}"
    return f"{v:.0f}"


X_FORMAT = {"step": None, "time": summary.fmt_duration, "tokens": fmt_tokens}


class CompareScreen(Screen):
    BINDINGS = [
        Binding("escape,q", "back", "Back"),
        Binding("x", "next_axis", "X axis"),
        Binding("m", "choose_metrics", "Metrics"),
        Binding("R", "report", "Report"),
    ]

    class Loaded(Message):
        def __init__(self, runs: list[compare.RunMetrics]):
            super().__init__()
            self.runs = runs

    class Polled(Message):
        def __init__(self, changed: bool):
            super().__init__()
            self.changed = changed

    def __init__(self, run_paths: list):
        super().__init__()
        self.run_paths = list(run_paths)
        self.runs: list[compare.RunMetrics] = []
        self.labels: list[str] = []
        self.run_colors: list[str] = []
        self.metrics: list[str] = []
        self.axis = "step"
        self._polling = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"reading {len(self.run_paths)} runs…", id="compare-bar", markup=False)
        with VerticalScroll(id="compare-body"):
            yield Grid(id="compare-charts")
            yield Static("", id="compare-runs")
            yield Static("", id="compare-table")
            yield Static("", id="compare-diff")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "compare"
        self.sub_title = f"{len(self.run_paths)} runs"  # never the app's (a path)
        self.query_one("#compare-body").focus()
        self.load()
        self.set_interval(POLL_EVERY, self._tick)

    # -- reading ---------------------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="compare-load", exit_on_error=False)
    def load(self) -> None:
        self.post_message(self.Loaded([compare.load_run(rd, supervisor.status(rd))
                                       for rd in map(RunDir, self.run_paths)]))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.group == "compare-load":
            error = event.worker.error
            self.query_one("#compare-bar", Static).update(
                f"cannot read the runs: {getattr(error, 'strerror', None) or error}")

    async def on_compare_screen_loaded(self, message: Loaded) -> None:
        self.runs = message.runs
        self.labels = compare.short_labels([r.id for r in self.runs])
        self.run_colors = [COLORS[i % len(COLORS)] for i in range(len(self.runs))]
        self.metrics = compare.default_metrics(self.runs)
        await self.build_charts()
        self.update_tables()

    def _tick(self) -> None:
        if self.app.screen is self and not self._polling and any(r.live for r in self.runs):
            self._polling = True
            self.poll()

    @work(thread=True, group="compare-poll", exit_on_error=False)
    def poll(self) -> None:
        changed = False
        try:
            for run in self.runs:
                if run.live:
                    st = supervisor.status(RunDir(run.path))
                    changed = run.poll() or changed  # after the status: a run that just ended is read to its end
                    state = str(st.get("display_state") or st.get("state") or "?")
                    changed = changed or state != run.state
                    run.state, run.live = state, st.get("state") in LIVE_STATES
        finally:
            self.post_message(self.Polled(changed))

    def on_compare_screen_polled(self, message: Polled) -> None:
        self._polling = False
        if message.changed:  # keys that appear only now are offered by the metrics chooser; charts stay as chosen
            for chart in self.query(OverlayChart):
                chart.refresh()
            self.update_tables()

    @property
    def shared(self) -> list[str]:
        return compare.shared_keys(self.runs)

    # -- views -----------------------------------------------------------------------------------------------
    async def build_charts(self) -> None:
        grid = self.query_one("#compare-charts", Grid)
        await grid.remove_children()
        charts = [OverlayChart(key, key) for key in self.metrics]
        if charts:
            await grid.mount_all(charts)
        else:
            await grid.mount(Static("These runs log no metric in common.", classes="compare-note"))
        self.layout_charts()
        self.show_axis()

    def show_axis(self) -> None:
        runs = [(label, color, run.history(self.axis)) for label, color, run in
                zip(self.labels, self.run_colors, self.runs)]
        for chart in self.query(OverlayChart):
            chart.show_runs(runs, x_format=X_FORMAT[self.axis])
        self.update_bar()

    def layout_charts(self) -> None:
        """Columns and chart height from the terminal size: two rows of charts on the first page at 80x24."""
        width, height = self.app.size
        n = max(1, len(self.metrics))
        cols = min(n, 1 if width < 60 else 2 if width < 110 else 3)
        grid = self.query_one("#compare-charts", Grid)
        grid.styles.grid_size_columns = cols
        chart_h = max(8, min(14, (height - 3) // 2))
        grid.styles.grid_rows = str(chart_h)
        grid.styles.height = chart_h * -(-n // cols)  # fixed: an auto-height grid of 1fr charts fills the page

    def on_resize(self) -> None:
        if self.runs:
            self.layout_charts()
            self.update_bar()
            self.update_tables()

    def update_bar(self) -> None:
        """One line, never cut: the parts that do not fit the width are left out, least useful first."""
        axis = f"x: {compare.AXIS_NAMES[self.axis]}"
        if self.axis == "tokens":
            fallback = [label for label, run in zip(self.labels, self.runs) if not run.tokens_logged]
            if fallback:
                axis += f" (by step: {', '.join(fallback)})"
        parts = [(axis, 0), (f"{len(self.metrics)} of {len(self.shared)} shared metrics", 1)]
        sampled = [label for label, run in zip(self.labels, self.runs) if run.sampled]
        if sampled:
            parts.append((f"sampled rows: {', '.join(sampled)}", 2))
        parts.append(("↓ final values, recipe diff", 3))
        width = self.app.size.width - 2  # the bar's padding
        while len(text := "  ·  ".join(t for t, _ in parts)) > width and len(parts) > 1:
            parts.remove(max(parts, key=lambda p: p[1]))
        self.query_one("#compare-bar", Static).update(text if len(text) <= width else text[:width - 1] + "…")

    def _heads(self) -> list[Text]:
        return [Text(label, style=f"bold {color}") for label, color in zip(self.labels, self.run_colors)]

    def update_tables(self) -> None:
        key = Table.grid(padding=(0, 2))
        for _ in range(4):
            key.add_column()
        for label, color, run in zip(self.labels, self.run_colors, self.runs):
            notes = [n for n in (run.recipe_note, "sampled" if run.sampled else "") if n]
            key.add_row(Text("● ", style=color) + Text(label, style="bold"), run.id, run.stage,
                        run.state + (f" ({', '.join(notes)})" if notes else ""))
        self.query_one("#compare-runs", Static).update(key)

        rows = compare.final_table(self.runs)
        table = self._table("Final values", "metric", [name for name, _ in rows])
        for name, cells in rows:
            table.add_row(name, *cells)
        self.query_one("#compare-table", Static).update(table)

        diff = compare.recipe_diff(self.runs)
        if diff:
            table = self._table("Recipe diff (keys that differ)", "key", [name for name, _ in diff])
            for name, cells in diff:
                table.add_row(name, *cells)
            self.query_one("#compare-diff", Static).update(table)
        else:
            self.query_one("#compare-diff", Static).update(Text("Recipe diff: the recipes are the same.",
                                                                 style="dim"))

    def _table(self, title: str, first: str, names: list[str]) -> Table:
        table = Table(title=title, title_justify="left", title_style="bold", box=None, padding=(0, 2, 0, 0),
                      show_edge=False, header_style="bold")
        # A fixed width for the names (rich lets a min_width push the last column off the edge); the run columns
        # share the rest and fold what does not fit.
        room = self.app.size.width - 6 - 10 * len(self.runs)  # scrollbar, padding; ~10 columns a run at least
        width = min(max([len(first)] + [len(name) for name in names]), 32, max(12, room))
        table.add_column(first, overflow="fold", style="dim", width=width)
        for head in self._heads():
            table.add_column(head, justify="right", overflow="fold")
        return table

    # -- actions ---------------------------------------------------------------------------------------------
    def action_back(self) -> None:
        self.app.pop_screen()

    def action_next_axis(self) -> None:
        self.set_axis(compare.AXES[(compare.AXES.index(self.axis) + 1) % len(compare.AXES)])

    def set_axis(self, axis: str) -> None:
        self.axis = axis
        if self.runs:
            self.show_axis()

    def action_choose_metrics(self) -> None:
        if not self.runs:
            return

        async def chosen(keys: list[str] | None) -> None:
            if keys is None:
                return
            if not keys:
                self.notify("no metric chosen: the charts stay as they were", severity="warning")
                return
            self.metrics = keys
            await self.build_charts()

        self.app.push_screen(MetricsModal(self.shared, self.metrics), chosen)

    def palette_commands(self):
        out = [(f"Compare by {compare.AXIS_NAMES[a]}", lambda a=a: self.set_axis(a), "x axis of every chart")
               for a in compare.AXES]
        out.append(("Choose the compared metrics", self.action_choose_metrics, "which shared metrics are charted"))
        out.append(("Write a report of these runs", self.action_report,
                    "an HTML page with their charts overlaid, in RUNS_DIR/reports/"))
        return out

    def action_report(self) -> None:
        """The compared runs' HTML report (workbench.core.report), written in a thread worker; the path is notified."""
        from workbench.tui.reporting import write_report_in_background

        write_report_in_background(self, [RunDir(p) for p in self.run_paths])


class MetricsModal(ModalScreen[list[str] | None]):
    """Tick the metrics to chart (space toggles); dismisses with them in the offered order, or None."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, offered: list[str], chosen: list[str]):
        super().__init__()
        self.offered, self.chosen = offered, set(chosen)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label("Metrics to chart (space toggles, enter on Apply)", classes="question")
            yield SelectionList(*[(k, k, k in self.chosen) for k in self.offered], id="metric-list")
            with Horizontal(classes="buttons"):
                yield Button("Apply", variant="primary", id="apply")
                yield Button("Cancel", id="cancel")

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "apply":
            picked = set(self.query_one(SelectionList).selected)
            self.dismiss([k for k in self.offered if k in picked])
        else:
            self.dismiss(None)
