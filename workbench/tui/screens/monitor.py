"""One run, live: progress and state, stage-appropriate charts, sampled completions by step, the log, the recipe.

A 0.5 s timer starts a thread worker (never two at once) that reads what was appended to metrics.jsonl,
samples.jsonl and stdout.log and settles the status; the UI updates only the parts that got new data.
Leaving the screen (or the app) never touches the run.
"""
from __future__ import annotations

from rich.syntax import Syntax
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Log, Select, Static, TabbedContent, TabPane

from workbench.core import summary, supervisor
from workbench.core.metrics import JsonlTail, MetricsHistory
from workbench.core.rundir import LIVE_STATES, RunDir
from workbench.core.stages import STAGES
from workbench.tui.screens.modals import MessageModal
from workbench.tui.widgets.charts import MetricChart
from workbench.tui.widgets.logtail import TextTail
from workbench.tui.widgets.samples import FILTERS, SampleIndex, apply_filter, render_step

LOG_LINES = 2000
CHUNK = 16 * 1024 * 1024  # metrics bytes per poll: a huge file fills the charts progressively
STAGE_CHARTS = {  # stage -> three (title, keys) charts; "a|b" = first present of a, b
    "grpo": [("reward", ["reward"]), ("loss", ["loss"]), ("KL", ["kl|objective/kl"])],
    "sft": [("loss", ["loss"]), ("token accuracy", ["mean_token_accuracy"]), ("learning rate", ["learning_rate"])],
    "pretrain": [("loss", ["loss"]), ("token accuracy", ["mean_token_accuracy"]),
                 ("learning rate", ["learning_rate"])],
    "reward": [("loss", ["loss"]), ("accuracy", ["accuracy"]), ("margin", ["margin"])],
    "dpo": [("loss", ["loss"]), ("preference accuracy", ["rewards/accuracies"]), ("margin", ["rewards/margins"])],
    "kto": [("loss", ["loss"]), ("KL", ["kl"]), ("learning rate", ["learning_rate"])],
    "ppo": [("RLHF reward", ["objective/rlhf_reward", "objective/scores"]),
            ("policy / value loss", ["loss/policy_avg", "loss/value_avg"]), ("KL", ["objective/kl"])],
    "distill": [("loss", ["loss"]), ("grad norm", ["grad_norm"]), ("learning rate", ["learning_rate"])],
    "distill-offline": [("loss", ["loss"]), ("token accuracy", ["mean_token_accuracy"]),
                        ("learning rate", ["learning_rate"])],
    "best-of-k": [("reward", ["reward"]), ("best of K", ["best_reward"]), ("kept fraction", ["kept_fraction"])],
}
DEFAULT_CHARTS = [("loss", ["loss"]), ("accuracy", ["rewards/accuracies|accuracy|mean_token_accuracy"]),
                  ("learning rate", ["learning_rate"])]


def chart_specs(stage: str, history: MetricsHistory) -> list[tuple[str, list[str]]]:
    known = STAGES.get(stage)
    if stage not in STAGE_CHARTS and known is not None and known.uses_rewards:
        stage = "grpo"  # rloo and other reward-function stages log the same keys
    specs = [(t, list(k)) for t, k in STAGE_CHARTS.get(stage, DEFAULT_CHARTS)]
    for title, keys in specs:
        if keys == ["reward"]:  # plus one line per reward function
            keys += sorted(k for k in history.series if k.startswith("rewards/") and k.endswith("/mean"))
    return specs


class MonitorScreen(Screen):
    BINDINGS = [
        Binding("escape,q", "back", "Back"),
        Binding("s", "stop", "Stop run"),
        Binding("left_square_bracket", "step(-1)", "Prev step"),
        Binding("right_square_bracket", "step(1)", "Next step"),
        Binding("f", "filter", "Filter"),
        Binding("x", "show_command", "Command"),
        Binding("L", "latest", "Latest", show=False),
        Binding("1", "tab('charts')", "Charts", show=False),
        Binding("2", "tab('samples')", "Samples", show=False),
        Binding("3", "tab('log')", "Log", show=False),
        Binding("4", "tab('recipe')", "Recipe", show=False),
    ]

    class Polled(Message):
        def __init__(self, metrics: bool, samples: bool, lines: list[str], status: dict | None, more: bool = False):
            super().__init__()
            self.metrics, self.samples, self.lines, self.status = metrics, samples, lines, status
            self.more = more  # metrics.jsonl has more unread bytes: poll again at once

    def __init__(self, rd: RunDir):
        super().__init__()
        self.rd = rd
        self.history = MetricsHistory()
        self.metrics_tail = JsonlTail(rd.metrics_path)
        self.samples = SampleIndex(rd.samples_path)
        self.log_tail = TextTail(rd.stdout_path)
        self.status: dict = rd.read_status()
        self.stage = str(self.status.get("stage") or "")
        self.shown_step: int | None = None  # None: follow the newest step
        self.filter = FILTERS[0]
        self._polling = False
        self._metric_keys: list[str] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="run-state", markup=False)
        with TabbedContent(id="tabs"):
            with TabPane("Charts", id="charts"):
                with Grid(id="chart-grid"):
                    for i, (title, keys) in enumerate(chart_specs(self.stage, self.history)):
                        yield MetricChart(title, keys, id=f"chart-{i}")
                    with Vertical(id="custom-cell"):
                        yield Select([], prompt="metric…", compact=True, id="metric-pick")
                        yield MetricChart("", [], id="chart-custom")
            with TabPane("Samples", id="samples"):
                yield Static("", id="samples-bar", markup=False)
                with VerticalScroll(id="samples-scroll"):
                    yield Static("no samples yet", id="samples-body")
            with TabPane("Log", id="log"):
                yield Log(max_lines=LOG_LINES, id="log-view")
            with TabPane("Recipe", id="recipe"):
                with VerticalScroll():
                    yield Static("", id="recipe-view")
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"run {self.rd.id}"
        try:
            text = self.rd.recipe_path.read_text(encoding="utf-8")
            self.query_one("#recipe-view", Static).update(Syntax(text, "toml", theme="ansi_dark", word_wrap=True))
        except OSError as e:
            self.query_one("#recipe-view", Static).update(Text(f"no recipe: {e.strerror or e}"))
        self.update_state_line()
        self.tick()
        self.set_interval(0.5, self.tick)

    # -- polling ---------------------------------------------------------------------------------------------
    def tick(self) -> None:
        if not self._polling:
            self._polling = True
            self.poll()

    @work(thread=True, group="monitor-poll", exit_on_error=False)
    def poll(self) -> None:
        metrics, samples, lines, st, more = False, False, [], None, False
        try:
            rows = self.metrics_tail.read_new(max_bytes=CHUNK)
            self.history.add(rows)
            metrics = bool(rows)
            try:
                more = self.rd.metrics_path.stat().st_size > self.metrics_tail.offset
            except OSError:
                pass
            samples = self.samples.read_new()
            lines = self.log_tail.read_new()
            st = supervisor.status(self.rd)
        finally:
            self.post_message(self.Polled(metrics, samples, lines, st, more))

    def on_monitor_screen_polled(self, message: Polled) -> None:
        self._polling = False
        if message.status is not None:
            self.status = message.status
        if message.metrics or message.status is not None:
            self.update_state_line()
        if message.metrics:
            self.update_charts()
        if message.samples:
            self.update_samples()
        if message.lines:
            self.query_one("#log-view", Log).write_lines(message.lines)
        if message.more:
            self.call_after_refresh(self.tick)

    # -- views -----------------------------------------------------------------------------------------------
    def update_state_line(self) -> None:
        st, h = self.status, self.history
        state = st.get("display_state") or st.get("state") or "?"
        parts = [state.upper()]
        if st.get("state") == "running" and h.max_steps is None:
            parts.append(st.get("phase") or "starting")
        else:
            parts.append(summary.progress_bar(h.step, h.max_steps, width=20))
        eta = h.eta_seconds()
        if eta is not None and st.get("state") == "running":
            parts.append(f"ETA {summary.fmt_duration(eta)}")
        else:
            parts.append(summary.fmt_duration(summary.duration_of(st)))
        for key in summary.HEADLINE_KEYS[:3]:
            if key in h.latest:
                parts.append(f"{key} {summary.fmt_num(h.latest[key])}")
        if st.get("error"):
            parts.append(f"error: {st['error']}")
        self.query_one("#run-state", Static).update("  ".join(parts))

    def update_charts(self) -> None:
        for i, (title, keys) in enumerate(chart_specs(self.stage, self.history)):
            self.query_one(f"#chart-{i}", MetricChart).show(self.history, keys, title)
        keys = self.history.keys()
        pick = self.query_one("#metric-pick", Select)
        if keys != self._metric_keys:
            self._metric_keys = keys
            current = pick.value
            pick.set_options([(k, k) for k in keys])
            if current in keys:
                pick.value = current
            else:
                shown = {k for _, ks in chart_specs(self.stage, self.history) for e in ks for k in e.split("|")}
                pick.value = next((k for k in ("grad_norm", "learning_rate") if k in keys and k not in shown),
                                  next((k for k in keys if k not in shown), keys[0]))
        self.query_one("#chart-custom", MetricChart).show(self.history)

    @on(Select.Changed, "#metric-pick")
    def _metric_picked(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self.query_one("#chart-custom", MetricChart).show(self.history, [event.value], event.value)

    def update_samples(self) -> None:
        steps = self.samples.steps
        bar = self.query_one("#samples-bar", Static)
        body = self.query_one("#samples-body", Static)
        if not steps:
            bar.update(f"no samples yet   filter: {self.filter} (f)")
            body.update("no samples yet" if self.stage != "sft" else "SFT runs log no sampled completions")
            return
        step = self.shown_step if self.shown_step in self.samples.by_step else steps[-1]
        rows = self.samples.by_step[step]
        shown = apply_filter(rows, self.filter)
        pos = steps.index(step) + 1
        follow = "following newest" if self.shown_step is None else "[ ] step, L newest"
        bar.update(f"step {step}  ({pos}/{len(steps)})   {len(shown)}/{len(rows)} completions   "
                   f"filter: {self.filter} (f)   {follow}")
        body.update(render_step(shown) if shown else Text(f"no completions at step {step} match '{self.filter}'"))

    # -- actions ---------------------------------------------------------------------------------------------
    def action_back(self) -> None:
        self.app.pop_screen()

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_step(self, delta: int) -> None:
        steps = self.samples.steps
        if not steps:
            return
        current = self.shown_step if self.shown_step in self.samples.by_step else steps[-1]
        i = max(0, min(len(steps) - 1, steps.index(current) + delta))
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
        supervisor.request_stop(self.rd)
        self.notify("stop requested: the trainer saves a checkpoint and ends")

    def action_force_stop(self) -> None:
        if self.status.get("state") in LIVE_STATES:
            self.notify("stopping: request, then SIGTERM after 10 s, then SIGKILL")
            self._force_stop()

    @work(thread=True, group="monitor-stop", exit_on_error=False)
    def _force_stop(self) -> None:
        supervisor.stop(self.rd, grace=10.0, term_grace=5.0)

    def palette_commands(self):
        return [("Stop this run", self.action_stop, "checkpoint and end (the trainer's own stop)"),
                ("Stop this run now", self.action_force_stop, "request, then SIGTERM, then SIGKILL the process group"),
                ("Duplicate this run's recipe", self._duplicate, "open the editor on a copy of this run's recipe")]

    def _duplicate(self) -> None:
        try:
            self.app.edit_recipe(self.rd.recipe_path.read_text(encoding="utf-8"), path=None)
        except OSError as e:
            self.notify(f"cannot read the recipe: {e.strerror or e}", severity="error")
