"""Every field of the stage's trl config class: a searchable table (name, value in the recipe, default, type)
with the highlighted field's help below. The schema arrives from a worker (``set_fields``); until then the
table says it is loading.

Search words match a field's name, its help, or an alias people type for it (lr, bs, kl, accum, epochs, seq, len,
...); fields a word names through an alias or in their name come first, help-only matches after.
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


# A word a user types -> the trl field names it means, best first (a name containing one of them also matches).
ALIASES: dict[str, tuple[str, ...]] = {
    "lr": ("learning_rate",), "rate": ("learning_rate",),
    "bs": ("per_device_train_batch_size", "per_device_eval_batch_size"), "batch": ("batch_size",),
    "kl": ("beta", "kl_coef"), "ref": ("ref_model", "beta"),
    "accum": ("gradient_accumulation_steps",), "accumulation": ("gradient_accumulation_steps",),
    "ga": ("gradient_accumulation_steps",),
    "epochs": ("num_train_epochs",), "epoch": ("num_train_epochs",),
    "steps": ("max_steps",), "wd": ("weight_decay",), "decay": ("weight_decay",),
    "seq": ("max_length", "max_seq_length", "max_prompt_length", "max_completion_length", "response_length"),
    "len": ("max_length", "max_seq_length", "max_prompt_length", "max_completion_length", "response_length"),
    "length": ("max_length",), "context": ("max_length",),
    "gens": ("num_generations",), "group": ("num_generations",), "samples": ("num_generations",),
    "temp": ("temperature",), "clip": ("epsilon", "max_grad_norm", "cliprange"),
    "ckpt": ("save_steps", "save_strategy", "save_total_limit"), "checkpoint": ("save_steps", "save_strategy"),
    "log": ("logging_steps", "report_to"), "sched": ("lr_scheduler_type",), "scheduler": ("lr_scheduler_type",),
}


def field_rank(name: str, help_: str, words: list[str]) -> tuple[int, int] | None:
    """How well every word matches a field, lower first: (0, i) it is the i-th field a word's alias names, (1, 0) a
    word or an alias is part of its name, (2, 0) a word is only in its help; None: some word matches nothing.
    So lr lists learning_rate, then lr_scheduler_type, then fields whose help mentions lr."""
    rank = (0, 0)
    for n, w in enumerate(words):
        aliases = ALIASES.get(w, ())
        if name in aliases:
            here = (0, aliases.index(name) if n == 0 else 0)
        elif w in name or any(part in name for part in aliases):
            here = (1, 0)
        elif w in help_:
            here = (2, 0)
        else:
            return None
        rank = max(rank, here)
    return rank


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
        yield Input(placeholder="search fields (e.g. lr, bs, kl, accum, epochs, seq, warmup)", id="field-search")
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
        ranked = []
        for name, info in self.fields.items():
            rank = field_rank(name, (info.get("help") or "").lower(), words)
            if rank is not None:
                ranked.append((rank, name, info))
        for _, name, info in sorted(ranked, key=lambda t: (t[0], t[1])):
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
