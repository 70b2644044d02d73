"""Start a pipeline from the TUI: pick a folder of recipes (the shipped pipelines such as recipes/demo, the current
folder and its subfolders that hold recipes, or a typed path), see its stages (file, stage, model) and every
validation problem, and start it: `p` on the runs list or "Start a pipeline…" in the palette.

The folder under the cursor is read and validated in a thread worker (core.pipeline.check_pipeline, what
`workbench pipeline DIR` validates with); enter starts it once it has no errors, through the same
core.pipeline.launch_pipeline call as the CLI. Code the stages would run (reward files, trust_remote_code) needs the
same consent as `--allow-code`: the consent dialog shows it first, and approving it is the --allow-code of this
launch. The new pipeline's row shows up on the runs list.
"""
from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from workbench.core import pipeline
from workbench.core.paths import display_path
from workbench.core.problems import BadInput, errors


class StartPipelineScreen(ModalScreen[str | None]):
    """Dismisses with the started pipeline's id, or None."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]
    DEFAULT_CSS = """
    StartPipelineScreen #pipeline-details { height: auto; max-height: 16; margin-top: 1; }
    """

    class Checked(Message):
        def __init__(self, folder: Path, check: pipeline.PipelineCheck):
            super().__init__()
            self.folder, self.check = folder, check

    def __init__(self, cwd: Path | None = None):
        super().__init__()
        self.cwd = (cwd or Path.cwd()).resolve()
        self.checks: dict[Path, pipeline.PipelineCheck] = {}
        self.wanted: Path | None = None  # the folder whose details should show
        self.start_when_checked: Path | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="start-pipeline"):
            yield Label("Start a pipeline: a folder of recipes, run in file-name order (run:previous chains them)",
                        classes="question")
            yield Input(placeholder="or type a folder and press enter", id="pipeline-path")
            yield OptionList(id="pipeline-list")
            with VerticalScroll(id="pipeline-details"):
                yield Static("", id="pipeline-stages", markup=False)

    def on_mount(self) -> None:
        options: list = []
        section = None
        for name, folder in pipeline.pipeline_folders(self.cwd):
            if name != section:
                if options:
                    options.append(None)
                options.append(Option(Text(name, style="bold"), disabled=True))
                section = name
            options.append(Option(Text("  " + display_path(folder, self.cwd)), id=str(folder)))
        ol = self.query_one(OptionList)
        ol.add_options(options)
        first = next((i for i, o in enumerate(options) if isinstance(o, Option) and o.id), None)
        if first is None:
            self.query_one("#pipeline-stages", Static).update("No pipeline folders here: type the path of a folder "
                                                              "of recipes.")
            self.query_one(Input).focus()
        else:
            ol.focus()
            ol.highlighted = first  # its stages show at once

    # -- choosing --------------------------------------------------------------------------------------------
    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id:
            self.show(Path(event.option.id))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.choose(Path(event.option.id))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.choose((self.cwd / Path(event.value.strip()).expanduser()).resolve())

    def show(self, folder: Path) -> None:
        self.wanted = folder
        if folder in self.checks:
            self.show_check(self.checks[folder])
        else:
            self.query_one("#pipeline-stages", Static).update(f"reading {display_path(folder, self.cwd)}…")
            self.check(folder)

    def choose(self, folder: Path) -> None:
        """Start the folder's pipeline once it is checked (now, if it already is)."""
        self.start_when_checked = folder
        self.show(folder)
        if folder in self.checks:
            self.start(self.checks[folder])

    @work(thread=True, exclusive=True, group="pipeline-check", exit_on_error=False)
    def check(self, folder: Path) -> None:
        self.post_message(self.Checked(folder, pipeline.check_pipeline(folder, self.app.runs_dir)))

    def on_start_pipeline_screen_checked(self, message: Checked) -> None:
        self.checks[message.folder] = message.check
        if message.folder == self.wanted:
            self.show_check(message.check)
        if message.folder == self.start_when_checked:
            self.start(message.check)

    def show_check(self, check: pipeline.PipelineCheck) -> None:
        lines = [f"{display_path(check.folder, self.cwd)}: {len(check.stages)} stage"
                 f"{'s' * (len(check.stages) != 1)}"]
        width = max((len(s.file.name) for s in check.stages), default=0)
        for i, s in enumerate(check.stages, 1):
            lines.append(f"  {i}. {s.file.name:{width}}  {s.stage:15} {s.model}")
        errs = errors(check.problems)
        for p in check.problems:
            where = Path(p.file).name if p.file else ""
            lines.append(f"{'✗' if p in errs else '!'} {where} {p.key or 'recipe'}: {p.message}"
                         + (f" → {p.hint}" if p.hint else ""))
        lines.append(f"✗ {len(errs)} problem{'s' * (len(errs) != 1)} to fix before it can start" if errs else
                     "✓ no problems: enter starts it")
        self.query_one("#pipeline-stages", Static).update("\n".join(lines))

    # -- starting --------------------------------------------------------------------------------------------
    def start(self, check: pipeline.PipelineCheck) -> None:
        self.start_when_checked = None
        if check.pipeline is None:
            n = len(errors(check.problems))
            self.notify(f"not started: {n} problem{'s' * (n != 1)} to fix (listed below)", severity="error")
            return
        pending = pipeline.unapproved_code(check.pipeline, self.app.runs_dir)
        if not pending:
            self.launch(check.pipeline, allow_code=False)
            return
        from workbench.core import trust
        from workbench.tui.screens.modals import ConfirmModal

        def answered(yes: bool | None) -> None:
            if yes:
                trust.approve(pending)
                self.launch(check.pipeline, allow_code=True)  # as `workbench pipeline DIR --allow-code`

        self.app.push_screen(ConfirmModal("This pipeline runs Python code: reward files, or a model's own code "
                                          "(trust_remote_code). Run it?\n\n" + trust.review_text(pending),
                                          yes="Run it", no="Cancel", danger=True), answered)

    def launch(self, pipe: pipeline.Pipeline, allow_code: bool) -> None:
        try:
            launched = pipeline.launch_pipeline(pipe, self.app.runs_dir, allow_code=allow_code)
        except BadInput as e:
            p = e.problems[0]
            self.notify(p.message + (f"\n{p.hint}" if p.hint else ""), severity="error")
            return
        self.app.launched.append(launched.process)  # reaped by the app's timer
        self.notify(f"pipeline {launched.pipeline.id} started: "
                    + " → ".join(f"{r.name} ({r.stage})" for r in pipe.recipes), timeout=8)
        self.dismiss(launched.pipeline.id)
