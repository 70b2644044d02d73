"""Every field of the stage's trl config class: a searchable table (name, value in the recipe, default, type)
with the highlighted field's help below. The schema arrives from a worker (``set_fields``); until then the
table says it is loading.
"""
from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Input, Static

from workbench.core.recipe import Recipe
from workbench.tui.widgets.recipe_form import to_text


def _short(value, width: int = 18) -> str:
    text = to_text(value) if value is not None else "-"
    return text if len(text) <= width else text[: width - 1] + "…"


class FieldTable(Vertical):
    class Chosen(Message):
        """The user pressed enter on a field: the editor asks for its new value."""

        def __init__(self, field: str, info: dict):
            super().__init__()
            self.field, self.info = field, info

    def __init__(self, recipe: Recipe, **kwargs):
        super().__init__(**kwargs)
        self.recipe = recipe
        self.fields: dict | None = None
        self.filter = ""

    def compose(self) -> ComposeResult:
        yield Input(placeholder="search fields (e.g. lr, kl, generation)", id="field-search")
        yield DataTable(id="field-table", cursor_type="row")
        yield Static("loading the trl config schema…", id="field-help", markup=False)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for col in ("field", "value", "default", "type"):
            table.add_column(col, key=col)

    def set_fields(self, fields: dict | None, error: str = "") -> None:
        self.fields = fields
        if fields is None:
            self.query_one("#field-help", Static).update(f"schema unavailable: {error}")
            return
        self.rebuild()

    def rebuild(self) -> None:
        if self.fields is None:
            return
        table = self.query_one(DataTable)
        table.clear()
        words = self.filter.lower().split()
        for name, info in sorted(self.fields.items()):
            hay = f"{name} {info.get('help', '')}".lower()
            if words and not all(w in hay for w in words):
                continue
            value = self.recipe.get(f"train.{name}")
            table.add_row(Text(name, style="bold" if value is not None else ""),
                          Text(_short(value), style="bold green" if value is not None else "dim"),
                          _short(info.get("default")), "/".join(info.get("kinds") or ["any"]), key=name)
        self._show_help()

    def refresh_value(self, name: str) -> None:
        table = self.query_one(DataTable)
        value = self.recipe.get(f"train.{name}")
        try:
            table.update_cell(name, "value", Text(_short(value), style="bold green" if value is not None else "dim"))
        except Exception:  # noqa: BLE001 - the row is filtered out: nothing to update
            pass

    def current(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value

    def _show_help(self) -> None:
        name = self.current()
        help_ = self.query_one("#field-help", Static)
        if not self.fields:
            return
        if name is None:
            help_.update(f"no field matches '{self.filter}'")
            return
        info = self.fields.get(name, {})
        choices = info.get("choices")
        help_.update(f"{name}: {info.get('help') or '(no help)'}" + (f"  choices: {', '.join(map(str, choices))}"
                                                                       if choices else ""))

    @on(Input.Changed, "#field-search")
    def _search(self, event: Input.Changed) -> None:
        event.stop()
        self.filter = event.value
        self.rebuild()

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_help()

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        name = event.row_key.value
        if self.fields and name in self.fields:
            self.post_message(self.Chosen(name, self.fields[name]))
