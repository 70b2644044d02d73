"""One run, live: progress and state, stage-appropriate charts, sampled completions by step, the log, the recipe,
and the machine (System tab: CPU, RAM, GPUs, this run's GPU memory; widgets/system_panel.py).

A 0.4 s timer starts a thread worker (never two at once) that reads what was appended to metrics.jsonl,
samples.jsonl and stdout.log and settles the status; the UI updates only the parts that got new data.
Leaving the screen (or the app) never touches the run.

A big run opens fast: the saved view of its metrics (workbench cache) is loaded if there is one; otherwise, when
much is unread, the charts first draw an overview (rows sampled across the file) while the worker folds the file
chunk by chunk, and switch to the exact history when it has caught up (then the view is saved for next time).
The completions viewer indexes samples.jsonl by step and parses only the step on screen. The log wraps long lines
(w: unwrapped, left / right scroll it; widgets/logview.py); the tabs switch with 1-5. A stop asks first, saying what
it keeps or loses (core/stop_cost.py).
"""
from __future__ import annotations

import os
import time
from collections import deque

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.lazy import Lazy
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Header, Static, TabbedContent, TabPane

from workbench.core import stop_cost, summary, supervisor
from workbench.core.lifecycle import FINAL_STATES
from workbench.core.metrics import JsonlTail, MetricsHistory, load_view, overview, save_view
from workbench.core.rundir import LIVE_STATES, RunDir
from workbench.core.stages import STAGES
from workbench.tui import chartplan
from workbench.tui.screens.modals import ConfirmModal, MessageModal
from workbench.tui.screens.series_picker import SeriesPicker
from workbench.tui.widgets.chart_grid import ChartGrid
from workbench.tui.widgets.footer import FittedFooter
from workbench.tui.widgets.logtail import TextTail
from workbench.tui.widgets.logview import LogView
from workbench.tui.widgets.samples import FILTERS, SampleIndex, apply_filter, render_step
from workbench.tui.widgets.system_panel import SystemPanel

LOG_LINES = 2000
CHUNK = 2 * 1024 * 1024  # metrics bytes per read while catching up on a big file (bounds the memory it takes)
POLL_EVERY = 0.4  # seconds between reads of the run dir (state line, log, samples)
CHART_EVERY = 0.7  # seconds between chart redraws at most: every other poll while a run logs fast
# ... and less often where redrawing would cost the TUI more than CHART_CPU of a core (a full grid of charts at
# 120x40 takes ~25 ms a redraw here, repaint included; watching a run must stay under 2 %): up to CHART_EVERY_MAX.
# The cost is the process's CPU from one redraw to the next (the repaint comes later, on Textual's own timer).
CHART_CPU, CHART_EVERY_MAX = 0.015, 3.0
CATCH_UP_S = 0.25  # reading time per poll while catching up; then the UI gets a turn
OVERVIEW_BYTES = 24 * 1024 * 1024  # more unread than this at open: draw a sampled overview first
SAVE_VIEW_BYTES = 16 * 1024 * 1024  # a file at least this big gets its folded view saved for the next open
FINISHED_POLL_EVERY = 5.0  # a finished run that has been read to its end: a slow check for a resume
SETTLE_EVERY = 2.0  # a live run whose files did not change: its processes are still checked this often


def chart_specs(stage: str, history: MetricsHistory) -> list[tuple[str, list[str]]]:
    """(title, keys) of the stage's own charts and the eval chart (see chartplan.plan for the whole grid)."""
    return [(s.title, s.keys + s.options) for s in chartplan.plan(stage, history) if not s.id.startswith("key:")]


def no_samples_text(stage: str) -> Text:
    known = STAGES.get(stage)
    if known is None or known.uses_rewards:
        return Text("no samples yet")
    return Text("no samples yet: this stage samples no completions itself; an [eval] section in the recipe shows "
                "the model's answers to held-out prompts here")


class MonitorScreen(Screen):
    BINDINGS = [
        Binding("escape,q", "back", "Back"),
        Binding("s", "stop", "Stop run"),
        # [ and ]: smoothing on the Charts tab, the sampled step elsewhere (check_action picks one)
        Binding("left_square_bracket", "smooth(-1)", "Smoother-"),
        Binding("right_square_bracket", "smooth(1)", "Smoother+"),
        Binding("m", "series", "Series"),
        Binding("left_square_bracket", "step(-1)", "Prev step"),
        Binding("right_square_bracket", "step(1)", "Next step"),
        Binding("f", "filter", "Filter"),
        Binding("x", "show_command", "Command"),
        Binding("R", "report", "Report"),
        Binding("L", "latest", "Latest", show=False),
        Binding("1", "tab('charts')", "Tabs", key_display="1-5"),  # 1 Charts, 2 Samples, 3 Log, 4 Recipe, 5 System
        Binding("2", "tab('samples')", "Samples", show=False),
        Binding("3", "tab('log')", "Log", show=False),
        Binding("4", "tab('recipe')", "Recipe", show=False),
        Binding("5", "tab('system')", "System", show=False),
    ]
    # What the footer shows first when not all fit (widgets/footer.py); everything is in ctrl+p and on `?`.
    FOOTER_KEYS = ("back", "stop", "tab('charts')", "toggle_wrap", "smooth", "step", "series", "filter", "report",
                   "show_command")

    class Polled(Message):
        def __init__(self, metrics: bool, samples: bool, lines: list[str], status: dict | None, more: bool = False):
            super().__init__()
            self.metrics, self.samples, self.lines, self.status = metrics, samples, lines, status
            self.more = more  # metrics.jsonl has more unread bytes: poll again at once

    def __init__(self, rd: RunDir):
        super().__init__()
        self.rd = rd
        self.history = MetricsHistory()
        self.overview: MetricsHistory | None = None  # shown while the exact history catches up on a big file
        self.metrics_tail = JsonlTail(rd.metrics_path)
        self._opened = False
        self._saved_at = 0  # metrics offset of the last saved view
        self.samples = SampleIndex(rd.samples_path)
        self.log_tail = TextTail(rd.stdout_path)
        self.status: dict = rd.read_status()
        self.stage = str(self.status.get("stage") or "")
        self.shown_step: int | None = None  # None: follow the newest step
        self.filter = FILTERS[0]
        self._polling = False
        self._poll_timer = None
        self._seen: tuple = ()  # (inode, size, mtime) of the run's files at the last read
        self._settled_at = 0.0  # monotonic time of the last read (which also settles the status)
        self._slow = False  # polling a finished run every FINISHED_POLL_EVERY
        self.facts = chartplan.RecipeFacts.of(rd.recipe_path, self.stage)
        self._state_text = ""
        self._samples_stale = False  # new samples arrived while their tab was hidden
        self._charts_stale = False  # new metrics not drawn yet (hidden tab, or drawn less than CHART_EVERY ago)
        self._charts_at = 0.0
        self._chart_timer = None  # a redraw of stale charts, due CHART_EVERY after the last
        self._chart_every = CHART_EVERY  # grows while redraws cost more than CHART_CPU (update_charts)
        self._charts_cpu = 0.0  # process CPU seconds at the last redraw
        self._recipe_shown = False
        self._keys_for_charts = True  # the footer shows the chart keys ([ ] smoothing, m series)
        self._log_pending: deque[str] = deque(maxlen=LOG_LINES)  # log lines that arrived while their tab was hidden

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="run-state", markup=False)
        with TabbedContent(id="tabs"):
            with TabPane("Charts", id="charts"):
                yield ChartGrid(id="chart-scroll")
            with TabPane("Samples", id="samples"):
                yield Static("", id="samples-bar", markup=False)
                with VerticalScroll(id="samples-scroll"):
                    yield Static(no_samples_text(self.stage), id="samples-body")
            # Hidden tabs' widgets are mounted after the first frame (Lazy): an open shows the charts sooner.
            with TabPane("Log", id="log"):
                yield Lazy(LogView(max_lines=LOG_LINES, id="log-view"))
            with TabPane("Recipe", id="recipe"):
                with Lazy(VerticalScroll()):
                    yield Static("", id="recipe-view")
            with TabPane("System", id="system"):
                yield Lazy(SystemPanel(self.rd))  # samples only while this tab is shown
        yield FittedFooter()

    def on_mount(self) -> None:
        self.title = f"run {self.rd.id}"
        self.update_state_line()
        self.update_charts()  # the empty charts and why they are empty, until the first read
        self._charts_at = 0.0  # the first rows are drawn as soon as they are read
        self.tick()
        self._poll_every(POLL_EVERY)

    # -- polling ---------------------------------------------------------------------------------------------
    def tick(self, force: bool = False) -> None:
        """Start a read unless one runs, or nothing changed in the run dir since the last one and that one was
        less than SETTLE_EVERY ago (it also settles the status): a few stat calls spare a worker thread a poll."""
        if self._polling:
            return
        now, seen = time.monotonic(), self._dir_state()
        if not force and seen == self._seen and now - self._settled_at < SETTLE_EVERY:
            return
        self._seen, self._settled_at = seen, now
        self._polling = True
        self.poll()

    def _dir_state(self) -> tuple:
        out = []
        for path in (self.rd.metrics_path, self.rd.samples_path, self.rd.stdout_path, self.rd.status_path):
            try:
                st = os.stat(path)
                out.append((st.st_ino, st.st_size, st.st_mtime_ns))
            except OSError:
                out.append(None)
        return tuple(out)

    def _poll_every(self, seconds: float) -> None:
        if self._poll_timer is not None:
            self._poll_timer.stop()
        self._poll_timer = self.set_interval(seconds, self.tick)

    @work(thread=True, group="monitor-poll", exit_on_error=False)
    def poll(self) -> None:
        metrics, samples, lines, st, more = False, False, [], None, False
        tail = self.metrics_tail
        try:
            if not self._opened and self.open_metrics():  # an overview or a saved view: show it before reading on
                metrics, more = True, True
                return
            deadline = time.monotonic() + CATCH_UP_S
            while True:  # small chunks (bounded memory) until caught up or out of time for this poll
                resets = tail.resets
                rows = tail.read_new(max_bytes=CHUNK)
                if tail.resets != resets:  # metrics.jsonl was replaced or truncated: its rows are all there is
                    self.history, self.overview, self._saved_at = MetricsHistory(), None, 0
                with self.history.lock:
                    self.history.add(rows)
                metrics = metrics or bool(rows)
                more = tail.behind > 0
                if not more or time.monotonic() > deadline:
                    break
            if not more and self.overview is not None:
                self.overview, metrics = None, True  # caught up: the exact history takes over, drawn at once
                self._charts_at = 0.0
            if not more and tail.offset >= SAVE_VIEW_BYTES and tail.offset - self._saved_at >= SAVE_VIEW_BYTES:
                with self.history.lock:
                    save_view(tail, self.history)
                self._saved_at = tail.offset
            samples = self.samples.read_new()
            more = more or self.samples.behind > 0
            lines = self.log_tail.read_new()
            st = supervisor.status(self.rd)
        finally:
            self.post_message(self.Polled(metrics, samples, lines, st, more))

    def open_metrics(self) -> bool:
        """First poll: start from the saved view, or draw an overview of a big unread file. True if it shows data."""
        self._opened = True
        tail = self.metrics_tail
        saved = load_view(tail)
        if saved is not None:
            self.history, self._saved_at = saved, tail.offset
        try:
            unread = self.rd.metrics_path.stat().st_size - tail.offset
        except OSError:
            return saved is not None
        if unread > OVERVIEW_BYTES:
            self.overview, _ = overview(self.rd.metrics_path)
        return saved is not None or self.overview is not None

    @property
    def shown(self) -> MetricsHistory:
        return self.overview if self.overview is not None else self.history

    def on_monitor_screen_polled(self, message: Polled) -> None:
        self._polling = False
        active = self.query_one(TabbedContent).active
        if message.status is not None:
            self.status = message.status
        if message.metrics or message.status is not None:
            self.update_state_line()
        now = time.monotonic()
        if message.metrics or self._charts_stale:  # charts: at most every CHART_EVERY, and only when seen
            wait = self._chart_every - (now - self._charts_at)
            if active == "charts" and wait <= 0:
                self.update_charts()
            else:
                self._charts_stale = True
                if active == "charts" and self._chart_timer is None:  # drawn then, polled or not
                    self._chart_timer = self.set_timer(wait, self._draw_stale_charts)
        # Hidden tabs are brought up to date when shown: drawing them unseen costs the watched run's CPU.
        if message.samples:
            if active == "samples":
                self.update_samples()
            else:
                self._samples_stale = True
        if message.lines:
            if active == "log":
                self.query_one("#log-view", LogView).add_lines(message.lines)
            else:
                self._log_pending.extend(message.lines)
        if message.more:
            self.call_after_refresh(self.tick, True)
        # A finished run read to its end changes only if it is resumed: a check every few seconds then, not 2.5
        # times a second (live again: back to POLL_EVERY).
        slow = self.status.get("state") in FINAL_STATES and not message.more and self.overview is None
        if slow != self._slow:
            self._slow = slow
            self._poll_every(FINISHED_POLL_EVERY if slow else POLL_EVERY)

    def _draw_stale_charts(self) -> None:
        self._chart_timer = None
        if self._charts_stale and self.query_one(TabbedContent).active == "charts":
            self.update_charts()

    @on(TabbedContent.TabActivated)
    def _tab_shown(self, event: TabbedContent.TabActivated) -> None:
        active = self.query_one(TabbedContent).active
        if (active == "charts") != self._keys_for_charts:  # [ ] and m: charts or samples (check_action)
            self._keys_for_charts = active == "charts"
            self.refresh_bindings()  # (the footer recomposes: not at every tab switch)
        if active == "recipe" and not self._recipe_shown:
            self._show_recipe()
        if active == "charts" and self._charts_stale:
            self.update_charts()
        elif active == "samples" and self._samples_stale:
            self.update_samples()
        elif active == "log":
            log = self.query_one("#log-view", LogView)
            log.focus()  # so left / right scroll the log, not switch tabs
            if self._log_pending:
                log.add_lines(list(self._log_pending))
                self._log_pending.clear()

    # -- views -----------------------------------------------------------------------------------------------
    def _show_recipe(self) -> None:
        """Highlighted when first shown: rich.syntax and its lexer cost ~0.2 s, which an open should not wait for."""
        from rich.syntax import Syntax

        self._recipe_shown = True
        try:
            text = self.rd.recipe_path.read_text(encoding="utf-8")
            self.query_one("#recipe-view", Static).update(Syntax(text, "toml", theme="ansi_dark", word_wrap=True))
        except OSError as e:
            self.query_one("#recipe-view", Static).update(Text(f"no recipe: {e.strerror or e}"))

    def update_state_line(self) -> None:
        """State, progress, ETA or duration, then what needs reading (error, overview, skipped lines), then the
        headline values as far as they fit the line (a shorter bar first, then the values from the right)."""
        st, h = self.status, self.shown
        state = st.get("display_state") or st.get("state") or "?"
        eta = h.eta_seconds()
        if eta is not None and st.get("state") == "running":
            clock = f"ETA {summary.fmt_duration(eta)}"
        else:
            clock = summary.fmt_duration(summary.duration_of(st))
        notes = [f"error: {st['error']}"] if st.get("error") else []
        tail = self.metrics_tail
        if self.overview is not None and tail.size:
            notes.append(f"overview; reading metrics {100 * tail.offset // tail.size}%")
        if tail.bad_lines:
            notes.append(f"{tail.bad_lines} unreadable metrics line{'s' * (tail.bad_lines != 1)} skipped")
        values = [f"{key} {summary.fmt_num(h.latest[key])}" for key in summary.headline_keys(self.stage)[:3]
                  if key in h.latest]  # the stage's declared headline (core/stages.py), as `workbench run` shows
        line = self.query_one("#run-state", Static)
        width = line.content_size.width or self.app.size.width - 2
        for bar in (20, 10):
            if st.get("state") == "running" and h.max_steps is None:
                progress = st.get("phase") or "starting"
            else:
                progress = summary.progress_bar(h.step, h.max_steps, width=bar)
            shown = list(values)
            text = "  ".join([state.upper(), progress, clock, *notes, *shown])
            while shown and len(text) > width:
                shown.pop()
                text = "  ".join([state.upper(), progress, clock, *notes, *shown])
            if len(text) <= width and len(shown) == len(values):
                break
        if len(text) > width:
            text = text[:max(0, width - 1)] + "…"
        if text != self._state_text:  # one fixed-height line: no layout pass needed
            self._state_text = text
            line.update(text, layout=False)

    def on_resize(self) -> None:
        self.update_state_line()  # fitted to the width

    def update_charts(self) -> None:
        now, cpu = time.monotonic(), time.process_time()
        if self._charts_at and now - self._charts_at < 2 * CHART_EVERY_MAX:  # what the last redraw cost, with
            spent = cpu - self._charts_cpu  # its repaint and the reads since: the next waits for its share
            self._chart_every = min(CHART_EVERY_MAX, max(CHART_EVERY, spent / CHART_CPU))
        self._charts_stale, self._charts_at, self._charts_cpu = False, now, cpu
        h, live = self.shown, self.status.get("state") not in FINAL_STATES
        specs = chartplan.plan(self.stage, h, self.facts)
        with h.lock:
            notes = {s.id: chartplan.empty_reason(s, self.stage, h, self.facts, live) for s in specs
                     if not chartplan.present(h, s.keys)}
        self.query_one(ChartGrid).sync(h, specs, notes)

    def update_samples(self) -> None:
        self._samples_stale = False
        steps = self.samples.steps
        bar = self.query_one("#samples-bar", Static)
        body = self.query_one("#samples-body", Static)
        if not steps:
            bar.update(f"no samples yet   filter: {self.filter} (f)")
            body.update(no_samples_text(self.stage))
            return
        step = self.shown_step if self.shown_step in self.samples else steps[-1]
        rows = self.samples.rows(step)
        shown = apply_filter(rows, self.filter)
        pos = self.samples.position(step) + 1
        follow = "following newest" if self.shown_step is None else "[ ] step, L newest"
        bar.update(f"step {step}  ({pos}/{len(steps)})   {len(shown)}/{len(rows)} completions   "
                   f"filter: {self.filter} (f)   {follow}")
        body.update(render_step(shown) if shown else Text(f"no completions at step {step} match '{self.filter}'"))

    # -- actions ---------------------------------------------------------------------------------------------
    def action_back(self) -> None:
        self.app.pop_screen()

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """[ ] and m act on the charts while the Charts tab is shown; [ ] step the samples elsewhere."""
        if action in ("smooth", "series", "step"):
            try:
                charts = self.query_one(TabbedContent).active == "charts"
            except Exception:  # noqa: BLE001 - not composed yet
                charts = True
            return charts if action != "step" else not charts
        return True

    def action_smooth(self, delta: int) -> None:
        grid = self.query_one(ChartGrid)
        target = grid.focused_chart()
        weight = grid.smooth(delta, self.shown)
        what = f"'{target.title}'" if target is not None else "every chart"
        self.notify(f"smoothing of {what}: " + (f"EMA {weight:g}" if weight else "off (raw values)"), timeout=2)

    def action_series(self) -> None:
        """The series picker of the focused chart (the first chart when none has focus)."""
        grid = self.query_one(ChartGrid)
        chart = grid.focused_chart() or next(iter(grid.charts()), None)
        if chart is None:
            return
        spec = grid.specs[chart.id]
        offered = chartplan.present(self.shown, spec.keys + spec.options)
        offered += [k for k in self.shown.keys() if k not in offered]
        shown = chart.series_keys()

        def picked(keys: list[str] | None) -> None:
            if keys:
                grid.pick(chart, keys, self.shown)

        self.app.push_screen(SeriesPicker(chart.title, offered, shown, chartplan.labels(chart.title, offered)),
                             picked)

    def action_step(self, delta: int) -> None:
        steps = self.samples.steps
        if not steps:
            return
        current = self.shown_step if self.shown_step in self.samples else steps[-1]
        i = max(0, min(len(steps) - 1, self.samples.position(current) + delta))
        self.shown_step = None if i == len(steps) - 1 and delta > 0 else steps[i]
        self.query_one(TabbedContent).active = "samples"
        self.update_samples()

    def action_latest(self) -> None:
        self.shown_step = None
        self.update_samples()

    def action_filter(self) -> None:
        self.filter = FILTERS[(FILTERS.index(self.filter) + 1) % len(FILTERS)]
        self.query_one(TabbedContent).active = "samples"
        self.update_samples()

    def action_show_command(self) -> None:
        """The exact command this run was started with, its environment delta and generated config files."""
        import shlex

        info = supervisor.launch_info(self.rd)
        text = "Command\n\n" + (shlex.join(info.get("argv", [])) or "(unknown)")
        if info.get("env"):
            text += "\n\nEnvironment\n" + "\n".join(f"  {k}={v}" for k, v in info["env"].items())
        for name in info.get("files", []):
            text += f"\n\n{name}\n" + (self.rd.path / name).read_text(encoding="utf-8", errors="replace")
        self.app.push_screen(MessageModal(text))

    def action_stop(self) -> None:
        if self.status.get("state") not in LIVE_STATES:
            self.notify(f"the run is {self.status.get('state')}, nothing to stop", severity="warning")
            return
        if self.rd.stop_requested():
            self.notify("a stop is already requested: the trainer saves a checkpoint and ends (ctrl+p 'Stop this "
                        "run now' escalates)")
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                supervisor.request_stop(self.rd)
                self.notify("stop requested: the trainer saves a checkpoint and ends")

        self.app.push_screen(ConfirmModal(stop_cost.stop_question(self.rd, self.status), yes="Stop",
                                          no="Keep running", danger=True), confirmed)

    def action_force_stop(self) -> None:
        if self.status.get("state") not in LIVE_STATES:
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.notify("stopping: request, then SIGTERM after 10 s, then SIGKILL")
                self._force_stop()

        self.app.push_screen(ConfirmModal(stop_cost.stop_question(self.rd, self.status) + "\nNow: a request, then "
                                          "SIGTERM after 10 s, then SIGKILL of its processes.", yes="Stop now",
                                          no="Keep running", danger=True), confirmed)

    @work(thread=True, group="monitor-stop", exit_on_error=False)
    def _force_stop(self) -> None:
        supervisor.stop(self.rd, grace=10.0, term_grace=5.0)

    def palette_commands(self):
        return [("Stop this run", self.action_stop, "checkpoint and end (the trainer's own stop)"),
                ("Stop this run now", self.action_force_stop, "request, then SIGTERM, then SIGKILL the process group"),
                ("Duplicate this run's recipe", self._duplicate, "open the editor on a copy of this run's recipe"),
                ("Write a report of this run", self.action_report,
                 "an HTML page with charts, recipe, command and completions in RUN_DIR/report/")]

    def action_report(self) -> None:
        """RUN_DIR/report/index.html and its charts, written in a thread worker; the path is notified."""
        from workbench.tui.reporting import write_report_in_background

        write_report_in_background(self, [self.rd])

    def _duplicate(self) -> None:
        try:
            self.app.edit_recipe(self.rd.recipe_path.read_text(encoding="utf-8"), path=None)
        except OSError as e:
            self.notify(f"cannot read the recipe: {e.strerror or e}", severity="error")
