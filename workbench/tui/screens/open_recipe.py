"""Open a recipe file: recently used files (most recent first), the current folder's *.toml, the project's shipped
recipes (recipes/ and its pipeline folders), or a typed path. Dismisses with the chosen path; the app opens it in
the editor (``WorkbenchApp.open_recipe_file``). A recent file that has gone is said so and forgotten.

Listing reads at most the first 4 KB of each file (its stage and header line).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from workbench.core import recent
from workbench.core.paths import RECIPES_DIR, display_path, keep_end

STAGE = re.compile(r'^\s*stage\s*=\s*["\']([^"\']+)', re.M)
RUN_TABLE = re.compile(r"^\s*\[\s*run\s*\]", re.M)
MAX_PER_FOLDER = 100


@dataclass(frozen=True)
class RecipeEntry:
    section: str
    path: Path
    stage: str = ""
    about: str = ""  # the header's first line
    missing: bool = False
    recipe_like: bool = True  # has a [run] table or a stage: not some other tool's .toml (pyproject.toml)


def describe(section: str, path: Path) -> RecipeEntry:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.read(4096)
    except FileNotFoundError:
        return RecipeEntry(section, path, missing=True)
    except OSError:
        return RecipeEntry(section, path, about="(cannot be read)")
    m = STAGE.search(head)
    about = next((ln.lstrip("# ").strip() for ln in head.splitlines() if ln.startswith("#") and ln.strip("# ")), "")
    return RecipeEntry(section, path, m.group(1) if m else "", about, recipe_like=bool(m or RUN_TABLE.search(head)))


def recipe_entries(cwd: Path | None = None, shipped: Path = RECIPES_DIR) -> list[RecipeEntry]:
    """Every file the screen offers, each once, in its first section: Recent, This folder, Shipped recipes."""
    cwd = (cwd or Path.cwd()).resolve()
    sections = [
        ("Recent", recent.recent_files()),
        ("This folder", sorted(cwd.glob("*.toml"))[:MAX_PER_FOLDER]),
        ("Shipped recipes", sorted(shipped.glob("*.toml")) + sorted(shipped.glob("*/*.toml"))),
    ]
    seen: set[Path] = set()
    out = []
    for section, files in sections:
        for f in files:
            p = f.resolve() if f.exists() else f
            if p in seen:
                continue
            entry = describe(section, p)
            if entry.recipe_like or section == "Recent":
                seen.add(p)
                out.append(entry)
    return out


class OpenRecipeScreen(ModalScreen[Path | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, cwd: Path | None = None):
        super().__init__()
        self.cwd = cwd or Path.cwd()
        self.entries: dict[str, RecipeEntry] = {}

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="open-recipe"):
            yield Label("Open a recipe file", classes="question")
            yield Input(placeholder="or type a path and press enter", id="recipe-path")
            yield OptionList(id="recipe-list")
            yield Static("", id="recipe-none", markup=False)

    def on_mount(self) -> None:
        self.fill()
        self.query_one(OptionList).focus()

    def fill(self) -> None:
        options: list = []
        self.entries = {}
        section = None
        width = int(self.app.size.width * 0.9) - 12  # one line per file in the dialog (90% wide, borders, padding)
        entries = recipe_entries(self.cwd)
        col = max([len(e.stage or "?") for e in entries] + [1]) + 1
        for e in entries:
            if e.section != section:
                if options:
                    options.append(None)
                title = e.section if e.section != "This folder" else \
                    f"This folder ({keep_end(display_path(self.cwd.resolve(), relative=False), width - 14)})"
                options.append(Option(Text(title, style="bold"), disabled=True))
                section = e.section
            key = str(e.path)
            self.entries[key] = e
            label = Text(f"  {e.stage or '?':{col}} ", style="cyan")
            label.append(keep_end(display_path(e.path, self.cwd), width - len(label) - (11 if e.missing else 0)))
            room = width - len(label) - 2
            if e.missing:
                label.append("  (missing)", style="bold red")
            elif e.about and room > 8:
                label.append("  " + (e.about if len(e.about) <= room else e.about[: room - 1] + "…"), style="dim")
            options.append(Option(label, id=key))
        ol = self.query_one(OptionList)
        ol.clear_options()
        ol.add_options(options)
        none = self.query_one("#recipe-none", Static)
        none.update("" if self.entries else "No recipes here yet: type a path, or press n on the runs list for a "
                                            "stage template.")
        none.display = not self.entries

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        entry = self.entries.get(event.option.id or "")
        if entry:
            self.choose(entry.path, recent_entry=entry.section == "Recent")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.choose((self.cwd / Path(event.value.strip()).expanduser()).resolve())

    def choose(self, path: Path, recent_entry: bool = False) -> None:
        if path.is_file():
            self.dismiss(path)
            return
        if recent_entry and not path.exists():
            recent.forget(path)
            self.notify(f"{path} no longer exists (moved or deleted); removed from the recent files",
                        severity="warning", timeout=8)
            self.fill()
            return
        self.notify(f"{path} is a folder, not a recipe file" if path.is_dir() else f"{path} not found",
                    severity="warning")
