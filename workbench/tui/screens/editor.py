"""The recipe editor: pick stage, model and data, set the knobs, see every problem as you type, save, launch.

Edits go straight into a core Recipe (tomlkit document), so saving keeps the user's comments and key order.
Slow work runs in thread workers that post messages back: validation (debounced 0.4 s after the last change;
the first call may extract trl's schema in a child process), the trl field schema, dataset previews, model and
dataset discovery, and launching. Leaving with unsaved changes asks first.

Changing the stage of an untouched template loads the other stage's template; after edits it maps the recipe to
the new stage (core.restage: [train] keys the new trl config lacks are dropped, named in a notice, and a dataset
that does not fit the new stage is said). alt+1/2/3 (or 1/2/3 outside a text field) switch the tabs.
"""
from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Header, Input, Select, Static, Switch, TabbedContent, TabPane

from workbench.core.problems import BadInput, Problem, errors
from workbench.core.recipe import Recipe
from workbench.core.stages import STAGES
from workbench.tui.screens.editor_io import EditorIO
from workbench.tui.widgets.field_table import FieldTable
from workbench.tui.widgets.footer import FittedFooter
from workbench.tui.widgets.recipe_form import basics, batch_note, from_text, knobs, launch_note, to_text

DEBOUNCE = 0.4


class EditorScreen(EditorIO, Screen):
    BINDINGS = [
        Binding("escape", "leave", "Back"),
        Binding("ctrl+s", "save", "Save"),
        Binding("f2", "save_as", "Save as"),
        Binding("ctrl+r", "launch", "Launch"),
        Binding("ctrl+t", "queue", "Queue"),  # the run waits in the run queue (ctrl+q is Textual's quit)
        Binding("alt+1", "tab('tab-basics')", "Tabs", key_display="alt+1/2/3", priority=True),
        Binding("alt+2", "tab('tab-train')", "Train", show=False, priority=True),
        Binding("alt+3", "tab('tab-fields')", "All fields", show=False, priority=True),
        Binding("1", "tab('tab-basics')", "Basics", show=False),
        Binding("2", "tab('tab-train')", "Train", show=False),
        Binding("3", "tab('tab-fields')", "All fields", show=False),
    ]
    TAB_FOCUS = {"tab-basics": "#in-run-name", "tab-train": ".form Input", "tab-fields": "#field-search"}

    class Validated(Message):
        def __init__(self, problems: list[Problem], text: str):
            super().__init__()
            self.problems, self.text = problems, text

    class SchemaLoaded(Message):
        def __init__(self, stage: str, fields: dict | None, error: str = ""):
            super().__init__()
            self.stage, self.fields, self.error = stage, fields, error

    class Restaged(Message):
        def __init__(self, stage: str, fields: dict | None, misfit: str | None):
            super().__init__()
            self.stage, self.fields, self.misfit = stage, fields, misfit

    class Previewed(Message):
        def __init__(self, path: str, text: str):
            super().__init__()
            self.path, self.text = path, text

    def __init__(self, text: str, path: Path | None = None, fresh: bool = False):
        super().__init__()
        try:
            self.recipe = Recipe.parse(text, path)
        except BadInput as e:  # not TOML: start from the text's stage-less skeleton, say why
            self.recipe = Recipe.parse("[run]\n", path)
            self.load_error = "; ".join(p.message for p in e.problems)
        else:
            self.load_error = ""
        self.saved_text = self.recipe.dumps() if path else None
        self.fresh = fresh  # an untouched template: changing the stage loads the other stage's template
        self.fields: dict = {}
        self.problems: list[Problem] = []
        self._timer = None
        self._preview_path: str | None = None

    # -- layout ----------------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="editor-head", markup=False)
        yield Static("", id="trust-warning", markup=False)
        with TabbedContent(id="editor-tabs"):
            with TabPane("Basics", id="tab-basics"):
                with VerticalScroll(classes="form"):
                    yield from basics(self.recipe)
            with TabPane("Train", id="tab-train"):
                with VerticalScroll(classes="form"):
                    yield from knobs(self.recipe)
            with TabPane("All fields", id="tab-fields"):
                yield FieldTable(self.recipe, id="fields")
        with VerticalScroll(id="problems-box"):
            yield Static("validating…", id="problems", markup=False)
        yield FittedFooter()  # as many keys as fit; all of them on ? and in ctrl+p

    def on_mount(self) -> None:
        self.title = "recipe editor"
        self.update_head()
        self.update_trust()
        self.update_batch_note()
        self.show_peft_fields()
        self.load_schema(self.recipe.stage)
        self.schedule_validation(0.0)
        if self.load_error:
            self.notify(self.load_error, severity="error", timeout=10)

    @property
    def dirty(self) -> bool:
        return self.recipe.dumps() != self.saved_text

    def update_head(self) -> None:
        from workbench.core.paths import display_path, keep_end

        mark = "● unsaved changes  " if self.dirty else ""
        start = f"{mark}{self.recipe.stage or '?'}  "
        where = display_path(self.recipe.path) if self.recipe.path else "not saved yet"
        head = self.query_one("#editor-head", Static)
        head.update(start + keep_end(where, max(self.app.size.width - len(start) - 2, 12)))  # one line
        head.set_class(self.dirty, "-dirty")

    def update_trust(self) -> None:
        warn = self.query_one("#trust-warning", Static)
        on_ = self.recipe.get("model.trust_remote_code") is True
        warn.update("⚠ trust_remote_code = true: Python code shipped with the model runs in the trainer" if on_ else "")
        warn.set_class(on_, "-shown")

    def update_batch_note(self) -> None:
        for note in self.query("#batch-note").results(Static):
            note.update(batch_note(self.recipe, self.fields))
        for note in self.query("#launch-note").results(Static):
            note.update(launch_note(self.recipe, self.app.runs_dir))

    # -- edits -----------------------------------------------------------------------------------------------
    def changed(self, key: str) -> None:
        """After any edit of ``key``: header, dependent notes, debounced validation."""
        self.fresh = False
        self.update_head()
        if key.startswith(("train.", "launch.", "peft.", "model.", "vllm.")):
            self.update_batch_note()
        if key.startswith("train."):
            self.query_one(FieldTable).refresh_value(key.split(".", 1)[1])
        self.schedule_validation()

    def set_value(self, key: str, value) -> None:
        if value is None:
            self.recipe.unset(key)
        else:
            self.recipe.set(key, value)
        self.changed(key)

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        self.take_input(event.input)

    def take_input(self, inp: Input) -> None:
        key = inp.name
        if not key or "." not in key:
            return
        value = from_text(key, inp.value)
        if value == self.recipe.get(key):
            return  # the value the form was built with, or an equivalent spelling
        self.set_value(key, value)

    def take_form(self) -> None:
        """Write every field's text, choice and switch into the recipe now. Their Changed messages reach this screen
        a message later, so a ctrl+r or ctrl+s pressed right after an edit (a paste, a script's send-keys, a busy
        machine) would otherwise launch or save the recipe as it was before it."""
        for inp in self.query(Input).results(Input):
            self.take_input(inp)
        for control in self.CONTROLS:
            for widget in self.query(f"#{control}"):
                if isinstance(widget, (Select, Switch)):
                    self.take_control(control, widget.value)

    # The choices and switches of the form, in the order take_form applies them: ZeRO may switch the launcher,
    # and the adapter method sets the checkpointing switch. The stage is not among them (it rebuilds the form).
    CONTROLS = ("trust", "peft-method", "report-to", "grad-ckpt", "liger", "zero", "vllm-mode", "backend", "offload")

    @on(Select.Changed)
    @on(Switch.Changed)
    def _control_changed(self, event: Select.Changed | Switch.Changed) -> None:
        if event.control.id in self.CONTROLS:
            self.take_control(event.control.id, event.value)

    def take_control(self, control: str, value) -> None:
        """Write a choice or switch into the recipe; nothing when the recipe already says so."""
        from workbench.tui.widgets.recipe_form import option_edits, vllm_mode

        if control == "trust":
            if value != bool(self.recipe.get("model.trust_remote_code", False)):
                self.set_value("model.trust_remote_code", True if value else None)
            self.update_trust()
        elif control in ("peft-method", "report-to", "grad-ckpt", "liger"):
            for key, v in option_edits(self.recipe, control, value):
                self.set_value(key, v)
            if control == "peft-method":
                self.show_peft_fields()
        elif control == "zero":
            if isinstance(value, int) and value != (self.recipe.get("launch.zero_stage") or 0):
                if value > 0 and (self.recipe.get("launch.backend") or "python") == "python":
                    self.query_one("#backend", Select).value = "deepspeed"  # ZeRO needs a distributed launcher
                self.set_value("launch.zero_stage", value)
        elif control == "vllm-mode":
            if isinstance(value, str) and value != vllm_mode(self.recipe):
                on_ = value != "off"  # trl's own fields: use_vllm, vllm_mode ([vllm] server_gpus for server mode)
                self.set_value("train.use_vllm", True if on_ else None)
                self.set_value("train.vllm_mode", value if on_ else None)
        elif control == "backend":
            if isinstance(value, str) and value != (self.recipe.get("launch.backend") or "python"):
                self.set_value("launch.backend", value)
        elif control == "offload":
            if value != bool(self.recipe.get("launch.offload_optimizer")):
                self.set_value("launch.offload_optimizer", True if value else None)
                zero3 = self.recipe.get("launch.zero_stage") == 3
                if zero3 or not value:
                    self.set_value("launch.offload_params", True if value and zero3 else None)

    def show_peft_fields(self) -> None:
        """The adapter method's own [peft] rows (core/peft_methods.FIELDS), its note, checkpointing's default."""
        from workbench.core.peft_methods import FIELDS
        from workbench.tui.widgets.recipe_form import checkpointing_on, method_note, peft_method

        method = peft_method(self.recipe)
        for inp in self.query(".peft-field").results(Input):
            if inp.parent is not None:
                inp.parent.display = (inp.name or "").removeprefix("peft.") in FIELDS.get(method, ())
        for note in self.query("#peft-note").results(Static):
            note.update(method_note(method))
        for switch in self.query("#grad-ckpt").results(Switch):
            switch.value = checkpointing_on(self.recipe)  # prefix tuning turns it off

    @on(Select.Changed, "#stage")
    async def _stage(self, event: Select.Changed) -> None:
        stage = event.value
        if not isinstance(stage, str) or stage == self.recipe.stage:
            return
        if not self.fresh:
            self.restage(stage)  # the new stage's schema and the dataset check, off the UI thread
            return
        from workbench.core.templates import template

        self.recipe = Recipe.parse(template(stage))
        await self.reshow()

    async def reshow(self) -> None:
        """Rebuild the form for the recipe's (new) stage."""
        self._preview_path = None  # the preview checks the dataset against the new stage
        await self.recompose()
        self.query_one(TabbedContent).active = "tab-basics"
        self.on_mount()

    @work(thread=True, exclusive=True, group="restage", exit_on_error=False)
    def restage(self, stage: str) -> None:
        from workbench.core import restage, schema

        try:
            fields = schema.stage_fields(STAGES[stage].config_class) if STAGES[stage].config_class else {}
        except Exception:  # noqa: BLE001 - SchemaUnavailable or a broken cache: switch anyway, validation says
            fields = None
        self.post_message(self.Restaged(stage, fields, restage.data_fit(self.recipe, stage)))

    async def on_editor_screen_restaged(self, message: Restaged) -> None:
        from workbench.core import restage

        if message.stage != self.query_one("#stage", Select).value or message.stage == self.recipe.stage:
            return  # another stage was chosen meanwhile
        old = self.recipe.stage
        notices = restage.switch_stage(self.recipe, message.stage, message.fields)
        if message.misfit:
            notices.append(message.misfit)
        await self.reshow()
        self.notify(f"stage {old} → {message.stage}" + "".join(f"\n• {n}" for n in notices),
                    severity="warning" if notices else "information", timeout=15 if notices else 5)

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        target = self.query(f"#{tab} {self.TAB_FOCUS[tab]}")
        if target:
            target.first().focus()

    @on(FieldTable.Chosen)
    def _field_chosen(self, event: FieldTable.Chosen) -> None:
        from workbench.tui.screens.modals import InputModal

        key = f"train.{event.field}"

        def done(text: str | None) -> None:
            if text is None:
                return
            self.set_value(key, from_text(key, text))
            for inp in self.query(Input).results(Input):
                if inp.name == key:
                    inp.value = to_text(self.recipe.get(key))

        self.app.push_screen(InputModal(f"train.{event.field}", to_text(self.recipe.get(key)),
                                        f"{event.info.get('help') or ''}\ndefault: {to_text(event.info.get('default'))}"
                                        "  (empty = remove, the default applies)"), done)

    # -- validation ------------------------------------------------------------------------------------------
    def schedule_validation(self, delay: float = DEBOUNCE) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(max(delay, 0.01), self._start_validation)  # 0 divides by zero in Timer

    def _start_validation(self) -> None:
        self._timer = None
        self.validate(self.recipe.dumps(), self.recipe.path)
        data = self.recipe.get("data.path")
        if isinstance(data, str) and data != self._preview_path:
            self._preview_path = data
            self.preview(data)

    @work(thread=True, exclusive=True, group="validate", exit_on_error=False)
    def validate(self, text: str, path: Path | None) -> None:
        from workbench.core.validate import validate_recipe

        try:
            problems = validate_recipe(Recipe.parse(text, path), self.app.runs_dir)
        except BadInput as e:
            problems = e.problems
        self.post_message(self.Validated(problems, text))

    def on_editor_screen_validated(self, message: Validated) -> None:
        if message.text != self.recipe.dumps():
            return  # stale: a newer validation is scheduled
        self.show_problems(message.problems)

    def show_problems(self, problems: list[Problem]) -> None:
        self.problems = problems
        box = self.query_one("#problems", Static)
        errs = errors(problems)
        if not problems:
            box.update("✓ no problems: ctrl+r launches, ctrl+t queues")
        else:
            lines = [f"{len(errs)} error(s), {len(problems) - len(errs)} warning(s)"]
            for p in problems:
                lines.append(f"{'✗' if p.severity == 'error' else '!'} {p.key or 'recipe'}: {p.message}"
                             + (f" → {p.hint}" if p.hint else ""))
            box.update("\n".join(lines))
        box.set_class(not problems, "-ok")
        box.set_class(bool(errs), "-errors")
        bad = {p.key for p in errs}
        for inp in self.query(Input).results(Input):
            if inp.name:
                inp.set_class(inp.name in bad, "-invalid")

    # -- schema and dataset preview ----------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="schema", exit_on_error=False)
    def load_schema(self, stage: str) -> None:
        from workbench.core import schema

        if stage not in STAGES:
            self.post_message(self.SchemaLoaded(stage, None, f"unknown stage '{stage}'"))
            return
        try:
            fields = schema.stage_fields(STAGES[stage].config_class)
        except Exception as e:  # noqa: BLE001 - SchemaUnavailable, or a broken cache: say so, keep editing
            self.post_message(self.SchemaLoaded(stage, None, str(e)))
            return
        self.post_message(self.SchemaLoaded(stage, fields))

    def on_editor_screen_schema_loaded(self, message: SchemaLoaded) -> None:
        if message.stage != self.recipe.stage:
            return
        self.fields = message.fields or {}
        self.query_one(FieldTable).set_fields(message.fields, message.error)
        for inp in self.query(Input).results(Input):
            name = (inp.name or "").removeprefix("train.")
            if inp.name and inp.name.startswith("train.") and name in self.fields:
                info = self.fields[name]
                inp.placeholder = f"default {to_text(info.get('default'))}"
                inp.tooltip = info.get("help") or None
        self.update_batch_note()

    @work(thread=True, exclusive=True, group="preview", exit_on_error=False)
    def preview(self, value: str) -> None:
        from workbench.tui.screens.editor_io import preview_text

        self.post_message(self.Previewed(value, preview_text(self.recipe, value)))

    def on_editor_screen_previewed(self, message: Previewed) -> None:
        if message.path == self.recipe.get("data.path"):
            self.query_one("#data-preview", Static).update(message.text)
