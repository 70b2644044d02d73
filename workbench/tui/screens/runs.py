"""The home screen: every run in the runs directory, refreshed live, and the actions on a run.

The table is refreshed once a second by a thread worker (supervisor.list_runs + summary.run_summary: a status
read and a head/tail read of metrics.jsonl per run); rows are updated in place so the cursor stays put.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from workbench.core import summary, supervisor
from workbench.core.problems import BadInput
from workbench.core.rundir import LIVE_STATES, RunDir
from workbench.tui.screens.modals import ConfirmModal

COLUMNS = ("run", "state", "stage", "model", "step", "reward", "loss", "started", "time")
STATE_STYLE = {"running": "bold green", "queued": "yellow", "stopping": "bold yellow", "saving": "bold yellow",
               "prepared": "blue", "completed": "cyan", "failed": "bold red", "killed": "red", "lost": "red",
               "stopped": "magenta"}


@dataclass(frozen=True)
class RunRow:
    path: Path
    state: str
    cells: tuple


def run_row(rd: RunDir, st: dict) -> RunRow:
    s = summary.run_summary(rd.metrics_path)
    step = f"{s['step']}/{s['max_steps']}" if s["max_steps"] else str(s["step"])
    state = st.get("display_state") or "?"
    model = str(st.get("model") or "?")
    cells = (rd.id, Text(state, style=STATE_STYLE.get(state, "")), st.get("stage") or "?",
             model if len(model) <= 28 else "…" + model[-27:], step,
             summary.fmt_num(s["latest"].get("reward")), summary.fmt_num(s["latest"].get("loss")),
             summary.fmt_time(st.get("started") or st.get("created")),
             summary.fmt_duration(summary.duration_of(st)))
    return RunRow(rd.path, st.get("state") or "?", cells)


class RunsScreen(Screen):
    BINDINGS = [
        Binding("n", "new", "New run"),
        Binding("enter,o", "open", "Open"),
        Binding("s", "stop", "Stop"),
        Binding("r", "resume", "Resume"),
        Binding("d", "delete", "Delete"),
        Binding("c", "duplicate", "Duplicate"),
        Binding("q", "app.quit", "Quit"),
    ]

    class Refreshed(Message):
        def __init__(self, rows: list[RunRow]):
            super().__init__()
            self.rows = rows

    def __init__(self):
        super().__init__()
        self.rows: dict[str, RunRow] = {}
        self._shown_once = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Static("", id="runs-empty", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for col in COLUMNS:
            table.add_column(col, key=col)
        self.set_interval(1.0, self._tick)  # the first refresh comes from on_screen_resume (the first show)

    def on_screen_resume(self) -> None:
        self.refresh_runs()

    def _tick(self) -> None:
        if self.app.screen is self:  # not while a monitor or editor covers the list (is_current counts a covered
            # screen as current): refreshing it would redraw the monitor too
            self.refresh_runs()

    @work(thread=True, exclusive=True, group="runs-list", exit_on_error=False)
    def refresh_runs(self) -> None:
        rows = [run_row(rd, st) for rd, st in supervisor.list_runs(self.app.runs_dir)]
        self.post_message(self.Refreshed(rows))

    def on_runs_screen_refreshed(self, message: Refreshed) -> None:
        table = self.query_one(DataTable)
        new = {r.path.name: r for r in message.rows}  # newest first, as list_runs (and `ls`) order them
        if list(new) != list(self.rows):
            selected = self.selected_id()
            table.clear()
            for key, row in new.items():
                table.add_row(*row.cells, key=key)
            if selected in new:
                table.move_cursor(row=list(new).index(selected))
        else:
            for key, row in new.items():
                old = self.rows[key].cells
                for col, value, before in zip(COLUMNS, row.cells, old):
                    if value != before:  # only what changed (a live run's step and time)
                        table.update_cell(key, col, value)
        was_empty = not self.rows
        self.rows = new
        if was_empty != (not new) or not self._shown_once:  # the placeholder: a layout pass only when it flips
            self._shown_once = True
            empty = self.query_one("#runs-empty", Static)
            empty.update("" if new else f"No runs yet in {self.app.runs_dir}.\nPress n to create one from a "
                                        "stage template, or ctrl+p for every command.")
            empty.display = not new

    # -- helpers ---------------------------------------------------------------------------------------------
    def selected_id(self) -> str | None:
        table = self.query_one(DataTable)
        if not self.rows or table.cursor_row < 0 or table.cursor_row >= table.row_count:
            return None
        return table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value

    def selected(self) -> RunRow | None:
        key = self.selected_id()
        return self.rows.get(key) if key else None

    def palette_commands(self):
        row = self.selected()
        if not row:
            return []
        return [(f"Open {row.path.name}", self.action_open, "monitor the selected run"),
                (f"Stop {row.path.name}", self.action_stop, "ask the selected run to checkpoint and stop"),
                (f"Duplicate {row.path.name}", self.action_duplicate, "a new recipe from the selected run's recipe")]

    # -- actions ---------------------------------------------------------------------------------------------
    def action_new(self) -> None:
        from workbench.core.stages import STAGES
        from workbench.tui.screens.pick import PickModal

        def chosen(stage: str | None) -> None:
            if stage:
                self.app.new_run(stage)

        self.app.push_screen(PickModal("New run: which stage?",
                                       [(name, f"{name:6} {s.title}") for name, s in STAGES.items()]), chosen)

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        row = self.selected()
        if row and row.state == "prepared" and not self._start(row):
            return
        if row:
            self.app.open_monitor(row.path)

    def _start(self, row: RunRow) -> bool:
        """Start a prepared run (made by `workbench prepare`) under a runner, here."""
        try:
            launched = supervisor.start(RunDir(row.path))
        except BadInput as e:
            self.notify(e.problems[0].message + (f"\n{e.problems[0].hint}" if e.problems[0].hint else ""),
                        severity="warning")
            return False
        self.app.launched.append(launched.process)  # reaped by the app's timer
        self.notify(f"{row.path.name} started")
        self.refresh_runs()
        return True

    def action_stop(self) -> None:
        row = self.selected()
        if not row:
            return
        if row.state == "prepared":
            self.notify(f"{row.path.name} was never started: enter or r starts it, d deletes it", severity="warning")
            return
        if row.state not in LIVE_STATES:
            self.notify(f"{row.path.name} is not running ({row.state})", severity="warning")
            return
        supervisor.request_stop(RunDir(row.path))
        self.notify(f"stop requested for {row.path.name}: it checkpoints and ends")
        self.refresh_runs()

    def action_resume(self) -> None:
        row = self.selected()
        if not row:
            return
        if row.state == "prepared":
            self._start(row)
            return
        try:
            launched = supervisor.resume(RunDir(row.path))
        except BadInput as e:
            self.notify(e.problems[0].message + (f"\n{e.problems[0].hint}" if e.problems[0].hint else ""),
                        severity="warning")
            return
        self.app.launched.append(launched.process)  # reaped by the app's timer
        self.notify(f"{row.path.name} resumed from its last checkpoint")
        self.refresh_runs()

    def action_delete(self) -> None:
        row = self.selected()
        if not row:
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
        if not row:
            return
        rd = RunDir(row.path)
        try:
            text = rd.recipe_path.read_text(encoding="utf-8")
        except OSError as e:
            self.notify(f"cannot read {rd.recipe_path}: {e.strerror or e}", severity="error")
            return
        self.app.edit_recipe(text, path=None)

