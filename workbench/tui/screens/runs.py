"""The home screen: every run in the runs directory, refreshed live, and the actions on a run.

The table is refreshed once a second by a thread worker (pipeline.listing + summary.run_summary: a status read
and a head/tail read of metrics.jsonl per run); rows are updated in place so the cursor stays put, and fitted to
the width (widgets/runs_table.py: state, step/max, reward and age always in full, the run id elided in the
middle). A pipeline is a row of its own (state, stage k/n) with its stage runs under it ("└ RUN"), grouped as
`workbench ls` groups them; on a pipeline row, s stops the pipeline, r resumes it, enter opens its current stage's
run. Runs waiting in the run queue (workbench.core.queue) come first, in queue order ("waiting #N"); their keys are
in runs_queue.py (s cancels a waiting run). A stop (of a run, a pipeline, a waiting run) asks first; for a run the
question says what the stop keeps or loses (core/stop_cost.py).
"""
from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from workbench.core import pipeline, stop_cost, supervisor
from workbench.core.pipedir import PipelineDir
from workbench.core.problems import BadInput
from workbench.core.rundir import LIVE_STATES, RunDir
from workbench.tui.screens.modals import ConfirmModal
from workbench.tui.screens.runs_queue import QUEUE_BINDINGS, QueueActions
from workbench.tui.widgets.footer import FittedFooter
from workbench.tui.widgets.runs_table import RunRow, RunsTable, table_rows
from workbench.tui.widgets.system import SystemLine

class RunsScreen(QueueActions, Screen):
    BINDINGS = [
        Binding("n", "new", "New run"),
        Binding("e", "app.choose_recipe", "Edit recipe"),
        Binding("p", "app.start_pipeline", "Pipeline"),  # a folder of recipes (screens/start_pipeline.py)
        Binding("enter,o", "open", "Open"),
        Binding("s", "stop", "Stop"),
        *QUEUE_BINDINGS,  # on a waiting run only, shown right after Stop (which cancels it)
        Binding("r", "resume", "Resume"),
        Binding("d", "delete", "Delete"),
        Binding("c", "duplicate", "Duplicate"),
        Binding("space", "mark", "Mark"),
        Binding("C", "compare", "Compare"),
        Binding("q", "app.quit", "Quit"),
        Binding("question_mark", "app.help", "Keys"),  # every key of this screen (the app binds it, and F1, too)
    ]
    # What the footer shows first when not all fit (widgets/footer.py); everything is in ctrl+p and on `?`.
    FOOTER_KEYS = ("queue_move", "start_now", "open", "new", "stop", "resume", "compare", "mark", "app.choose_recipe",
                   "duplicate", "delete", "app.quit")

    class Refreshed(Message):
        def __init__(self, rows: list[RunRow]):
            super().__init__()
            self.rows = rows

    def __init__(self):
        super().__init__()
        self.rows: dict[str, RunRow] = {}
        self._shown_once = False

    @property
    def marked(self) -> list[str]:
        """Row keys marked with space for a comparison (kept across refreshes)."""
        return self.query_one(RunsTable).marked

    def compose(self) -> ComposeResult:
        yield Header()
        yield RunsTable(id="runs")
        yield Static("", id="runs-empty", markup=False)
        yield SystemLine(id="system-line")  # GPUs free, CPU, RAM, disk: sampled once a second while shown
        yield FittedFooter()

    def on_mount(self) -> None:
        self.set_interval(1.0, self._tick)  # the first refresh comes from on_screen_resume (the first show)

    def on_screen_resume(self) -> None:
        self.refresh_runs()

    def _tick(self) -> None:
        if self.app.screen is self:  # not while a monitor or editor covers the list (is_current counts a covered
            # screen as current): refreshing it would redraw the monitor too
            self.refresh_runs()

    @work(thread=True, exclusive=True, group="runs-list", exit_on_error=False)
    def refresh_runs(self) -> None:
        self.post_message(self.Refreshed(table_rows(self.app.runs_dir)))

    def on_runs_screen_refreshed(self, message: Refreshed) -> None:
        table = self.query_one(RunsTable)
        new = {r.key: r for r in message.rows}  # newest first, grouped, as `ls` orders them
        table.marked[:] = [key for key in table.marked if key in new]  # a deleted run is no longer marked
        table.show_rows(new)  # only what changed (a live run's step and time), unless the widths change
        was_empty = not self.rows
        self.rows = new
        if was_empty != (not new) or not self._shown_once:  # the placeholder: a layout pass only when it flips
            self._shown_once = True
            empty = self.query_one("#runs-empty", Static)
            empty.update("" if new else f"No runs yet in {self.app.runs_dir}.\nPress n to create one from a "
                                        "stage template, e to open a recipe file, or ctrl+p for every command.")
            empty.display = not new
        self._update_queue_keys()  # the selected run may have left the queue

    # -- helpers ---------------------------------------------------------------------------------------------
    def selected_id(self) -> str | None:
        return self.query_one(RunsTable).selected_key() if self.rows else None

    def selected(self) -> RunRow | None:
        key = self.selected_id()
        return self.rows.get(key) if key else None

    def palette_commands(self):
        row = self.selected()
        if not row:
            return []
        if row.kind == "pipeline":
            return [(f"Stop pipeline {row.path.name}", self.action_stop, "its current stage checkpoints and ends"),
                    (f"Resume pipeline {row.path.name}", self.action_resume, "continue from its current stage")]
        if row.state == "waiting":
            return self.queue_palette_commands(row)
        return [(f"Open {row.path.name}", self.action_open, "monitor the selected run"),
                ("Compare marked runs", self.action_compare, "charts, final values and recipe diff (space marks)"),
                (f"Stop {row.path.name}", self.action_stop, "ask the selected run to checkpoint and stop"),
                (f"Duplicate {row.path.name}", self.action_duplicate, "a new recipe from the selected run's recipe")]

    # -- actions ---------------------------------------------------------------------------------------------
    def action_new(self) -> None:
        from workbench.core.stages import STAGES
        from workbench.tui.screens.pick import PickModal

        def chosen(stage: str | None) -> None:
            if stage:
                self.app.new_run(stage)

        self.app.push_screen(PickModal("New run: which stage?",  # names and titles in two columns
                                       [(name, (name, s.title)) for name, s in STAGES.items()]), chosen)

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        row = self.selected()
        if row and row.kind == "pipeline":
            if row.current:
                self.app.open_monitor(row.current)
            else:
                self.notify(f"pipeline {row.path.name} has not started a stage yet", severity="warning")
            return
        if row and row.state == "prepared" and not self._start(row):
            return
        if row:
            self.app.open_monitor(row.path)

    def _start(self, row: RunRow) -> bool:
        """Start a prepared run (made by `workbench prepare`) under a runner, here."""
        try:
            launched = supervisor.start(RunDir(row.path))
        except BadInput as e:
            self._warn(e)
            return False
        self.app.launched.append(launched.process)  # reaped by the app's timer
        self.notify(f"{row.path.name} started")
        self.refresh_runs()
        return True

    def action_stop(self) -> None:
        row = self.selected()
        if not row:
            return
        if row.kind == "pipeline":
            self._stop_pipeline(row)
            return
        if row.state == "waiting":
            self._cancel_waiting(row)
            return
        if row.state == "prepared":
            self.notify(f"{row.path.name} was never started: enter or r starts it, d deletes it", severity="warning")
            return
        if row.state not in LIVE_STATES:
            self.notify(f"{row.path.name} is not running ({row.state})", severity="warning")
            return
        rd = RunDir(row.path)
        if rd.stop_requested():
            self.notify(f"a stop is already requested for {row.path.name}: it checkpoints and ends")
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                supervisor.request_stop(rd)
                self.notify(f"stop requested for {row.path.name}: it checkpoints and ends")
                self.refresh_runs()

        self.app.push_screen(ConfirmModal(stop_cost.stop_question(rd), yes="Stop", no="Keep running", danger=True),
                             confirmed)

    def action_resume(self) -> None:
        row = self.selected()
        if not row:
            return
        if row.kind == "pipeline":
            self._resume_pipeline(row)
            return
        if row.state == "prepared":
            self._start(row)
            return
        try:
            launched = supervisor.resume(RunDir(row.path))
        except BadInput as e:
            self._warn(e)
            return
        self.app.launched.append(launched.process)  # reaped by the app's timer
        self.notify(f"{row.path.name} resumed from its last checkpoint")
        self.refresh_runs()

    def action_delete(self) -> None:
        row = self.selected()
        if not row or self._not_for_pipelines(row):
            return
        if row.state in LIVE_STATES:
            self.notify(f"{row.path.name} is {row.state}: stop it first (s)", severity="error")
            return

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            try:
                supervisor.delete(RunDir(row.path))
            except (BadInput, OSError) as e:
                self.notify(e.problems[0].message if isinstance(e, BadInput) else str(e), severity="error")
                return
            self.notify(f"deleted {row.path.name}")
            self.refresh_runs()

        self.app.push_screen(ConfirmModal(f"Delete run {row.path.name}?\nIts metrics, samples, checkpoints and final "
                                          "model are removed from disk.", yes="Delete", no="Keep", danger=True),
                             confirmed)

    def action_duplicate(self) -> None:
        row = self.selected()
        if not row or self._not_for_pipelines(row):
            return
        rd = RunDir(row.path)
        try:
            text = rd.recipe_path.read_text(encoding="utf-8")
        except OSError as e:
            self.notify(f"cannot read {rd.recipe_path}: {e.strerror or e}", severity="error")
            return
        self.app.edit_recipe(text, path=None)

    # -- comparison --------------------------------------------------------------------------------------------
    def action_mark(self) -> None:
        key = self.selected_id()
        row = self.rows.get(key) if key else None
        if row is None or self._not_for_pipelines(row):
            return
        if key in self.marked:
            self.marked.remove(key)
        else:
            self.marked.append(key)
        self.query_one(RunsTable).redraw()

    def action_compare(self) -> None:
        """The marked runs (two or more), or the marked one and the selected one, on the Compare screen."""
        keys = [key for key in self.rows if key in self.marked]  # in the table's order
        selected = self.selected()
        if len(keys) < 2 and selected is not None and selected.kind == "run" and selected.key not in keys:
            keys.append(selected.key)
        if len(keys) < 2:
            self.notify("mark two or more runs with space, then press C (or mark one and select another)",
                        severity="warning")
            return
        from workbench.tui.screens.compare import CompareScreen

        self.app.push_screen(CompareScreen([self.rows[key].path for key in keys]))

    # -- pipeline rows ---------------------------------------------------------------------------------------
    def _stop_pipeline(self, row: RunRow) -> None:
        if row.state not in LIVE_STATES:
            self.notify(f"pipeline {row.path.name} is not running ({row.state})", severity="warning")
            return
        question = (f"Stop pipeline {row.path.name}?\nIts current stage's run checkpoints and ends, later stages do "
                    "not start; r resumes the pipeline from that stage.")
        if row.current is not None:
            question += f"\n{row.current.name}: " + stop_cost.describe(stop_cost.stop_cost(RunDir(row.current)))

        def confirmed(yes: bool | None) -> None:
            if yes:
                pipeline.request_pipeline_stop(PipelineDir(row.path))
                self.notify(f"stop requested for pipeline {row.path.name}: its current stage checkpoints and ends, "
                            "later stages do not start")
                self.refresh_runs()

        self.app.push_screen(ConfirmModal(question, yes="Stop", no="Keep running", danger=True), confirmed)

    def _resume_pipeline(self, row: RunRow) -> None:
        try:
            launched = pipeline.resume_pipeline(PipelineDir(row.path))
        except BadInput as e:
            self._warn(e)
            return
        self.app.launched.append(launched.process)  # reaped by the app's timer
        self.notify(f"pipeline {row.path.name} resumed from its current stage")
        self.refresh_runs()

    def _not_for_pipelines(self, row: RunRow) -> bool:
        if row.kind == "pipeline":
            self.notify("that works on a run: select one of the pipeline's stage runs (└)", severity="warning")
        return row.kind == "pipeline"

    def _warn(self, e: BadInput) -> None:
        problem = e.problems[0]
        self.notify(problem.message + (f"\n{problem.hint}" if problem.hint else ""), severity="warning")
