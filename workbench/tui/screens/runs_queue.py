"""The runs list's keys for runs waiting in the run queue (workbench.core.queue): shift+up / shift+down move the
selected waiting run, T moves it to the top, g starts it now whatever the GPUs; s (RunsScreen.action_stop) cancels
it, once confirmed. The keys work, and show in the footer right after Stop, only while a waiting run is selected (check_action).

A mixin of RunsScreen (which owns ``selected``, ``refresh_runs``, ``_warn``); its handlers are found by name, as
Textual finds them on mixins.
"""
from __future__ import annotations

from textual.binding import Binding

from workbench.core import queue
from workbench.core.problems import BadInput
from workbench.core.rundir import RunDir

QUEUE_BINDINGS = [
    Binding("shift+up", "queue_move('up')", "Reorder", key_display="⇧↑↓"),
    Binding("shift+down", "queue_move('down')", "Move down in the queue", show=False),
    Binding("T", "queue_move('top')", "Move to the top of the queue", show=False),
    Binding("g", "start_now", "Start now"),
]


class QueueActions:
    _queue_keys_shown = False  # the footer shows the queue's keys (a waiting run is selected)

    def _waiting_row(self):
        row = self.selected()
        return row if row is not None and row.kind == "run" and row.state == "waiting" else None

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action in ("queue_move", "start_now"):
            return self._waiting_row() is not None
        return True

    def on_data_table_row_highlighted(self, event) -> None:
        self._update_queue_keys()

    def _update_queue_keys(self) -> None:
        waiting = self._waiting_row() is not None
        if waiting != self._queue_keys_shown:  # the footer is redrawn only when it flips
            self._queue_keys_shown = waiting
            self.refresh_bindings()

    def queue_palette_commands(self, row) -> list:
        return [(f"Start {row.path.name} now", self.action_start_now, "g: whatever the GPUs"),
                ("Move up in the queue", lambda: self.action_queue_move("up"), "shift+up"),
                ("Move down in the queue", lambda: self.action_queue_move("down"), "shift+down"),
                ("Move to the top of the queue", lambda: self.action_queue_move("top"), "T"),
                (f"Cancel {row.path.name}", self.action_stop, "s: it leaves the queue without running")]

    def action_queue_move(self, where: str) -> None:
        row = self._waiting_row()
        if row is None:
            return
        try:
            queue.move(RunDir(row.path), where)
        except BadInput as e:
            self._warn(e)
            return
        self.refresh_runs()  # the cursor follows the row (by key)

    def action_start_now(self) -> None:
        row = self._waiting_row()
        if row is None:
            return
        try:
            launched = queue.start_now(RunDir(row.path))
        except BadInput as e:
            self._warn(e)
            return
        self.app.launched.append(launched.process)  # reaped by the app's timer
        self.notify(f"{row.path.name} started now, ahead of the queue")
        self.refresh_runs()

    def _cancel_waiting(self, row) -> None:
        from workbench.tui.screens.modals import ConfirmModal

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            try:
                queue.cancel(RunDir(row.path))
            except BadInput as e:
                self._warn(e)
                return
            self.notify(f"{row.path.name} cancelled: it leaves the queue without running (d deletes it)")
            self.refresh_runs()

        self.app.push_screen(ConfirmModal(f"Cancel waiting run {row.path.name}?\nIt leaves the queue without "
                                          "running (nothing of it ran yet); d deletes it afterwards.",
                                          yes="Cancel it", no="Keep waiting", danger=True), confirmed)
