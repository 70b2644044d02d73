"""The Textual app: screens, global bindings, the command palette, and reaping of runs launched from here.

Owns nothing else: each screen (tui/screens/) owns its state and its workers; all training knowledge lives in
workbench.core. This package never imports torch/transformers/trl/peft/datasets/deepspeed/accelerate.
Quitting the app never stops a run (runs are detached sessions; the TUI re-attaches by reading run dirs).
"""
from __future__ import annotations

import subprocess
from functools import partial
from pathlib import Path

from textual.app import App
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider

from workbench.core.stages import STAGES


class WorkbenchCommands(Provider):
    """Main actions, plus whatever the current screen offers through ``palette_commands()``."""

    def _commands(self) -> list[tuple[str, object, str]]:
        app: WorkbenchApp = self.app  # type: ignore[assignment]
        out = [(f"New {name} run", partial(app.new_run, name), f"open the recipe editor on the {name} template")
               for name in STAGES]
        out.append(("Runs", app.show_runs, "the list of runs"))
        out.append(("Open a recipe file…", app.action_choose_recipe,
                    "recent files, this folder's *.toml, the shipped recipes"))
        out.append(("Start a pipeline…", app.action_start_pipeline,
                    "a folder of recipes (recipes/demo, this folder's): its stages, problems, then start"))
        out.append(("Keys of this screen", app.action_help, "? or F1: every key of the current screen"))
        screen_commands = getattr(self.screen, "palette_commands", None)
        if screen_commands:
            out.extend(screen_commands())
        return out

    async def discover(self) -> Hits:
        for name, callback, help_ in self._commands():
            yield DiscoveryHit(name, callback, help=help_)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_ in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_)


class WorkbenchApp(App):
    TITLE = "workbench"
    CSS_PATH = "app.tcss"
    COMMANDS = App.COMMANDS | {WorkbenchCommands}
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
                # F1 also inside a text field, where ? is typed
                Binding("question_mark,f1", "help", "Keys of this screen (this list)", show=False)]

    def __init__(self, runs_dir: Path, recipe: Path | None = None, run: Path | None = None, **kwargs):
        """``recipe``: open the editor on this file at start; ``run``: open this run's monitor at start (both over
        the runs list, which is where going back leads)."""
        super().__init__(**kwargs)
        self.runs_dir = Path(runs_dir)
        self.start_recipe, self.start_run = recipe, run
        # Runners started from this process: polled so they are reaped (never waited on, never stopped on exit).
        self.launched: list[subprocess.Popen] = []

    def on_mount(self) -> None:
        from workbench.tui.screens.runs import RunsScreen

        self.sub_title = str(self.runs_dir)
        self.push_screen(RunsScreen())
        self.set_interval(2.0, self._reap)
        if self.start_recipe:
            self.open_recipe_file(Path(self.start_recipe))
        elif self.start_run:
            self.open_monitor(Path(self.start_run))

    def _reap(self) -> None:
        self.launched = [p for p in self.launched if p.poll() is None]

    # -- navigation shared by screens and the palette -------------------------------------------------------
    def new_run(self, stage: str) -> None:
        from workbench.core.templates import template
        from workbench.tui.screens.editor import EditorScreen

        self.push_screen(EditorScreen(template(stage), path=None, fresh=True))

    def edit_recipe(self, text: str, path: Path | None = None) -> None:
        from workbench.tui.screens.editor import EditorScreen

        self.push_screen(EditorScreen(text, path=path))

    def action_choose_recipe(self) -> None:
        """The open-recipe screen; the chosen file opens in the editor."""
        from workbench.tui.screens.open_recipe import OpenRecipeScreen

        self.push_screen(OpenRecipeScreen(), lambda path: self.open_recipe_file(path) if path else None)

    def action_start_pipeline(self) -> None:
        """The pipeline folder picker; a started pipeline's row appears on the runs list."""
        from workbench.tui.screens.start_pipeline import StartPipelineScreen

        self.push_screen(StartPipelineScreen())

    def action_help(self) -> None:
        """Every key of the current screen (its bindings, the footer's and the rest) and the app's."""
        from workbench.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def open_recipe_file(self, path: Path) -> bool:
        """The editor on a recipe file (remembered as recently used); a file that cannot be opened is a notice."""
        from workbench.core import recent
        from workbench.core.problems import BadInput
        from workbench.core.recipe import Recipe
        from workbench.tui.screens.editor import EditorScreen

        try:
            recipe = Recipe.load(path)
        except BadInput as e:
            p = e.problems[0]
            self.notify(f"{p.file}: {p.message}" + (f"\n{p.hint}" if p.hint else ""), severity="error", timeout=10)
            return False
        recent.remember(recipe.path)
        self.push_screen(EditorScreen(recipe.text, path=recipe.path))
        return True

    def open_monitor(self, run_path: Path) -> None:
        from workbench.core.rundir import RunDir
        from workbench.tui.screens.monitor import MonitorScreen

        self.push_screen(MonitorScreen(RunDir(run_path)))

    def show_runs(self) -> None:
        from workbench.tui.screens.runs import RunsScreen

        while len(self.screen_stack) > 2 and not isinstance(self.screen, RunsScreen):
            self.pop_screen()


def run_app(runs_dir: Path, recipe: Path | None = None, run: Path | None = None) -> int:
    WorkbenchApp(runs_dir, recipe=recipe, run=run).run()
    return 0
