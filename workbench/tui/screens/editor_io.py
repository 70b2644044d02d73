"""The recipe editor's file and process side: save / save as, leave with an unsaved-changes prompt, launch
(validate, then supervisor.launch, then open the monitor) or queue (validate, then queue.queue_recipe: the run waits
in the run queue, and the runs list shows it), the model and dataset pickers, dataset previews.

Save as adds `.toml` when the name lacks it, makes relative paths that named files beside the old file absolute
(they resolve against the recipe's folder) and makes the header's `workbench run FILE` name the new file. Every
saved file is remembered as recently used (core.recent).

A mixin of EditorScreen (which owns ``recipe``, ``saved_text``, ``dirty``, ``show_problems``, ``update_head``).
"""
from __future__ import annotations

from pathlib import Path

from textual import work
from textual.message import Message
from textual.widgets import Button, Input

from workbench.core.problems import BadInput, Problem, errors
from workbench.core.recipe import Recipe
from workbench.tui.screens.modals import ConfirmModal


def preview_text(recipe: Recipe, value: str) -> str:
    """What the dataset preview shows for data.path = value: format, rows, columns, fit to the stage, first rows."""
    import json

    from workbench.core.datafile import peek
    from workbench.core.stages import STAGES, match_format

    path = recipe.resolve_path(value) if value else None
    if path is None:
        return "no dataset chosen"
    if not path.exists() and "/" in value and not value.startswith((".", "/", "~")) and value.count("/") == 1:
        return f"{value}: not a local file; used as a hub dataset id (needs the network or the datasets cache)"
    try:
        p = peek(path)
    except BadInput as e:
        return "✗ " + "; ".join(f"{pr.message}" + (f" → {pr.hint}" if pr.hint else "") for pr in e.problems)
    lines = [f"{p.format}, {p.num_rows}{'' if p.complete else '+'} rows, columns: {', '.join(p.columns)}"]
    stage = STAGES.get(recipe.stage)
    if stage:
        fmt = match_format(stage, p.columns)
        if fmt:
            lines.append(f"✓ fits {stage.name} as '{fmt.name}'")
        else:
            need = " or ".join("+".join(f.columns) for f in stage.formats)
            lines.append(f"✗ columns do not fit {stage.name}: it needs {need}")
    for row in p.rows[:3]:
        text = json.dumps(row, ensure_ascii=False)
        lines.append("  " + (text if len(text) <= 150 else text[:149] + "…"))
    return "\n".join(lines)


class EditorIO:
    class Launched(Message):
        def __init__(self, launched=None, problems: list[Problem] | None = None, queued=None):
            super().__init__()
            self.launched, self.problems, self.queued = launched, problems or [], queued

    class Choices(Message):
        def __init__(self, key: str, title: str, options: list[tuple[str, str]]):
            super().__init__()
            self.key, self.title, self.options = key, title, options

    # -- save ------------------------------------------------------------------------------------------------
    def action_save(self, then=None) -> None:
        if self.recipe.path is None:
            self.action_save_as(then)
            return
        self.take_form()
        self._write(self.recipe.path, then)

    def action_save_as(self, then=None) -> None:
        from workbench.tui.screens.modals import InputModal

        self.take_form()
        suggestion = self.recipe.path or Path.cwd() / f"{self.recipe.name}.toml"

        def chosen(text: str | None) -> None:
            if not text or not text.strip():
                return
            target = Path(text.strip()).expanduser()
            if not target.name.endswith(".toml"):
                target = target.with_name(target.name + ".toml")
            if target.exists() and (self.recipe.path is None or target.resolve() != self.recipe.path):
                self.app.push_screen(ConfirmModal(f"{target} exists. Overwrite it?", yes="Overwrite", danger=True),
                                     lambda yes: self._write(target, then) if yes else None)
                return
            self._write(target, then)

        self.app.push_screen(InputModal("Save recipe as", str(suggestion), "a .toml path (relative paths in the "
                                        "recipe are resolved against its folder)"), chosen)

    def _write(self, target: Path, then=None) -> None:
        from workbench.core import comments, recent

        if self.recipe.path is None or Path(target).resolve() != self.recipe.path:
            from workbench.tui.widgets.recipe_form import to_text

            for key in self.recipe.rebase(target):
                for inp in self.query(Input).results(Input):
                    if inp.name == key:
                        inp.value = to_text(self.recipe.get(key))
            named = comments.name_file(self.recipe.dumps(), comments.shown_path(Path(target).resolve()))
            if named != self.recipe.dumps():
                self.recipe.reparse(named)
        try:
            self.recipe.save(target)
        except OSError as e:
            self.notify(f"cannot save {target}: {e.strerror or e}", severity="error")
            return
        self.saved_text = self.recipe.dumps()
        recent.remember(self.recipe.path)
        self.update_head()
        self.notify(f"saved {self.recipe.path}")
        self.schedule_validation(0.0)  # the file name in problems, relative paths
        if then:
            then()

    # -- leave -----------------------------------------------------------------------------------------------
    def action_leave(self) -> None:
        self.take_form()
        if not self.dirty or self.saved_text is None and self.fresh:
            self.app.pop_screen()
            return
        from workbench.tui.screens.modals import UnsavedModal

        def answer(choice: str | None) -> None:
            if choice == "save":
                self.action_save(then=self.app.pop_screen)
            elif choice == "discard":
                self.app.pop_screen()

        self.app.push_screen(UnsavedModal(), answer)

    # -- launch ----------------------------------------------------------------------------------------------
    def palette_commands(self):
        return [("Launch this recipe", self.action_launch, "ctrl+r: validate it and start the run now"),
                ("Queue this recipe", self.action_queue, "ctrl+t: validate it; the run waits in the run queue until "
                                                         "the GPUs it needs are free")]

    def action_queue(self) -> None:
        self.action_launch(queue=True)

    def action_launch(self, queue: bool = False) -> None:
        from workbench.core import trust

        self.take_form()
        try:
            pending = trust.unapproved(self.recipe, self.app.runs_dir)
        except (OSError, ValueError):
            pending = []  # an unreadable file or a bad run: reference: validation reports it
        if pending:
            def answered(yes: bool | None) -> None:
                if yes:
                    trust.approve(pending)
                    self.action_launch(queue)

            self.app.push_screen(ConfirmModal("This recipe runs Python code: reward files, or the model's own code "
                                              "(trust_remote_code). Run it?\n\n" + trust.review_text(pending),
                                              yes="Run it", no="Cancel", danger=True), answered)
            return
        self.notify("validating before " + ("queueing…" if queue else "launch…"))
        self._launch(self.recipe.dumps(), self.recipe.path, queue)

    @work(thread=True, exclusive=True, group="launch", exit_on_error=False)
    def _launch(self, text: str, path: Path | None, queue: bool = False) -> None:
        from workbench.core import queue as run_queue, supervisor
        from workbench.core.validate import validate_recipe

        try:
            recipe = Recipe.parse(text, path)
            problems = validate_recipe(recipe, self.app.runs_dir)
            if errors(problems):
                self.post_message(self.Launched(None, problems))
                return
            if queue:
                self.post_message(self.Launched(None, problems, run_queue.queue_recipe(recipe, self.app.runs_dir)))
                return
            self.post_message(self.Launched(supervisor.launch(recipe, self.app.runs_dir), problems))
        except BadInput as e:
            self.post_message(self.Launched(None, e.problems))

    def on_editor_io_launched(self, message: "EditorIO.Launched") -> None:
        if message.queued is not None:
            got = message.queued
            if got.process is not None:
                self.app.launched.append(got.process)  # the queue process: reaped by the app's timer
            self.notify(f"{got.run.id} waits in the queue (#{got.position})")
            self.app.pop_screen()  # the runs list shows it
            return
        if message.launched is None:
            self.show_problems(message.problems)
            n = len(errors(message.problems))
            self.notify(f"not launched: {n} problem{'s' if n != 1 else ''} to fix (listed below)", severity="error")
            return
        self.app.launched.append(message.launched.process)
        self.notify(f"launched {message.launched.run.id}")
        self.app.pop_screen()
        self.app.open_monitor(message.launched.run.path)

    # -- pickers ---------------------------------------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "pick-model":
            self._discover("model.path")
        elif event.button.id == "pick-data":
            self._discover("data.path")

    @work(thread=True, exclusive=True, group="discover", exit_on_error=False)
    def _discover(self, key: str) -> None:
        from workbench.core import discovery

        if key == "model.path":
            found = discovery.model_choices(self.app.runs_dir)
            title = "Model (built-in, earlier runs, hub cache, local folders)"
        else:
            roots = [Path.cwd()] + ([self.recipe.path.parent] if self.recipe.path else [])
            found = discovery.dataset_choices(self.app.runs_dir, roots)
            title = "Dataset (earlier runs' datasets, shipped assets, this folder)"
        self.post_message(self.Choices(key, title, [(c.value, c.label) for c in found]))

    def on_editor_io_choices(self, message: "EditorIO.Choices") -> None:
        from workbench.tui.screens.pick import PickModal

        if not message.options:
            self.notify("nothing found; type a path or a hub id", severity="warning")
            return

        def chosen(value: str | None) -> None:
            if value:
                for inp in self.query(Input).results(Input):
                    if inp.name == message.key:
                        inp.value = value  # Input.Changed writes it into the recipe

        self.app.push_screen(PickModal(message.title, message.options), chosen)
