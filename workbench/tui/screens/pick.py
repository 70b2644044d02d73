"""A modal list to pick one of a few options (stage for a new run, a model, a dataset file)."""
from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option


class PickModal(ModalScreen[str | None]):
    """Options are (value, label); dismisses with the chosen value, or None on escape. A label that is a tuple of
    columns (name, title) is laid out in columns: the first as wide as its widest, the last wrapping under itself."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, title: str, options: list[tuple[str, str]]):
        super().__init__()
        self.title_text = title
        self.options = options

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(self.title_text, classes="question")
            widths = [max(len(label[i]) for _, label in self.options if isinstance(label, tuple))
                      for i in range(max((len(label) for _, label in self.options if isinstance(label, tuple)),
                                         default=0))]
            yield OptionList(*[Option(prompt(label, widths), id=value) for value, label in self.options], id="pick")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


def prompt(label: str | tuple[str, ...], widths: list[int]):
    if isinstance(label, str):
        return Text(label)
    grid = Table.grid(padding=(0, 2))
    for i in range(len(label)):
        last = i == len(label) - 1
        grid.add_column(no_wrap=not last, width=None if last else widths[i])
    grid.add_row(*(Text(cell) for cell in label))
    return grid
