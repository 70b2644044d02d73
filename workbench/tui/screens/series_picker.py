"""The series picker of one monitor chart: every key the run logs, the chart's own first, the shown ones ticked.
Space toggles, enter applies, escape leaves the chart as it was."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import SelectionList, Static
from textual.widgets.selection_list import Selection


class SeriesPicker(ModalScreen[list[str] | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel"), Binding("enter", "apply", "Apply", priority=True)]

    def __init__(self, title: str, keys: list[str], shown: list[str], labels: list[str] | None = None):
        super().__init__()
        self.chart_title, self.keys, self.shown = title, keys, set(shown)
        self.key_labels = labels or keys

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"Series of '{self.chart_title}': space toggles, enter applies, escape cancels",
                         classes="question", markup=False)
            yield SelectionList(*(Selection(k if label == k else f"{label}  ({k})", k, k in self.shown)
                                  for k, label in zip(self.keys, self.key_labels)), id="series-list")

    def on_mount(self) -> None:
        self.query_one(SelectionList).focus()

    def action_apply(self) -> None:
        chosen = set(self.query_one(SelectionList).selected)
        self.dismiss([k for k in self.keys if k in chosen])  # in the offered order: the chart's own first
