"""The keys of the current screen: `?` (or F1, which also works while a text field has the focus) on any screen
lists every key the screen binds with its description, the ones the footer leaves out included, then the keys that
work everywhere (the app's). escape, ? or F1 closes it.

The lists are read from the screen's and the app's bindings as Textual merged them (each class's BINDINGS), so a
key added to a screen shows here without touching this file. Keys of one action (enter / o) share a line.
"""
from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widgets import Label, Static

# Textual's own Screen keys (focus moves, copy): listed after the screen's own keys.
TEXTUAL_SCREEN_ACTIONS = {b.action for b in Binding.make_bindings(Screen.BINDINGS)}


def key_rows(node: DOMNode) -> list[tuple[str, str]]:
    """(keys, description) for each action ``node`` binds, in binding order, Textual's own screen keys last;
    system bindings (Textual's ctrl+c notice) are left out."""
    app = node.app
    grouped: dict[tuple[str, str], list[str]] = {}
    for _key, binding in node._bindings:  # the merged BINDINGS of the node's classes, plus runtime binds
        if binding.system:
            continue
        description = binding.description or binding.tooltip or binding.action.replace("_", " ")
        keys = grouped.setdefault((binding.action, description), [])
        shown = app.get_key_display(binding)
        if shown not in keys:
            keys.append(shown)
    rows = sorted(grouped.items(), key=lambda item: item[0][0] in TEXTUAL_SCREEN_ACTIONS)  # stable
    return [(" / ".join(keys), description) for (_action, description), keys in rows]


def keys_table(rows: list[tuple[str, str]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for keys, description in rows:
        table.add_row(Text(keys), Text(description))
    return table


class HelpScreen(ModalScreen[None]):
    """The keys of ``screen`` (the one that was current when help was asked for) and the app's."""

    BINDINGS = [Binding("escape,question_mark,f1", "dismiss(None)", "Close")]
    DEFAULT_CSS = """
    HelpScreen #help { height: 90%; }
    HelpScreen #help-keys { height: 1fr; }
    HelpScreen .help-section { margin-top: 1; }
    """

    def __init__(self, screen: Screen):
        super().__init__()
        self.target = screen

    def compose(self) -> ComposeResult:
        self.screen_rows, self.app_rows = key_rows(self.target), key_rows(self.app)
        name = type(self.target).__name__.removesuffix("Screen") or "this screen"
        if self.target.title and self.target.title != self.app.title:
            name += f" ({self.target.title})"
        with Vertical(classes="dialog wide", id="help"):
            yield Label(f"Keys: {name}", classes="question")
            with VerticalScroll(id="help-keys"):
                yield Static(keys_table(self.screen_rows), id="help-screen-keys")
                yield Static(Text("Everywhere", style="bold"), classes="help-section")
                yield Static(keys_table(self.app_rows), id="help-app-keys")
            yield Static(Text("↑/↓ scroll · escape or ? closes · ctrl+p: every command", style="dim"))

    def on_mount(self) -> None:
        self.query_one("#help-keys", VerticalScroll).focus()  # so the arrow keys scroll a long list
