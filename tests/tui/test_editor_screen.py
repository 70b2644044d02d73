"""The recipe editor: edits keep comments on save, unsaved prompt, inline validation, template switching, launch."""
from __future__ import annotations

import shutil

import pytest

from textual.widgets import Input, Select, Switch, TabbedContent

from tests.conftest import ASSETS, RECIPES
from tests.tui.screen_text import notices, screen_text, wait_for
from workbench.tui.screens.editor import EditorScreen
from workbench.tui.screens.runs import RunsScreen

SIZE = (80, 24)


def recipe_copy(tmp_path):
    """grpo-tiny.toml beside a copy of its data, so relative paths still resolve."""
    (tmp_path / "assets" / "data").mkdir(parents=True)
    shutil.copy(ASSETS / "arith-prompts.jsonl", tmp_path / "assets" / "data")
    (tmp_path / "recipes").mkdir()
    target = tmp_path / "recipes" / "grpo-tiny.toml"
    shutil.copy(RECIPES / "grpo-tiny.toml", target)
    return target


async def open_editor(app, pilot, path) -> EditorScreen:
    app.edit_recipe(path.read_text(), path)
    await pilot.pause(0.1)
    return app.screen


async def wait_problems(pilot, screen, contains: str) -> str:
    await wait_for(pilot, lambda: contains in str(screen.query_one("#problems").render()),
                   f"'{contains}' in the problems panel")
    return str(screen.query_one("#problems").render())


async def test_typed_edit_then_save_keeps_comments(tmp_path, app_factory):
    path = recipe_copy(tmp_path)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_editor(app, pilot, path)
        screen.query_one(TabbedContent).active = "tab-train"
        await pilot.pause(0.05)
        temp = screen.query_one("#in-train-temperature", Input)
        temp.focus()
        temp.value = ""
        await pilot.press(*"0.7")
        await pilot.pause(0.05)
        assert screen.recipe.get("train.temperature") == 0.7
        assert "unsaved changes" in screen_text(app)
        await pilot.press("ctrl+s")
        await pilot.pause(0.05)
        saved = path.read_text()
        assert "temperature = 0.7" in saved
        assert "# completions per prompt (>= 2)" in saved  # comments survive
        assert saved.startswith("# GRPO on the built-in tiny chat model")
        assert "unsaved changes" not in screen_text(app)


async def test_validation_message_for_a_bad_value(tmp_path, app_factory):
    path = recipe_copy(tmp_path)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_editor(app, pilot, path)
        await wait_problems(pilot, screen, "no problems")
        screen.query_one("#in-train-num_generations", Input).value = "3"
        text = await wait_problems(pilot, screen, "not divisible by num_generations (3)")
        assert "error" in text
        assert screen.query_one("#in-train-per_device_train_batch_size", Input).has_class("-invalid")
        screen.query_one("#in-train-num_generations", Input).value = "4"
        await wait_problems(pilot, screen, "no problems")


async def test_leaving_with_unsaved_changes_asks(tmp_path, app_factory):
    path = recipe_copy(tmp_path)
    before = path.read_text()
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_editor(app, pilot, path)
        screen.query_one("#in-train-beta", Input).value = "0.1"
        await pilot.pause(0.05)
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert "unsaved changes" in screen_text(app)
        await pilot.click("#cancel")
        await pilot.pause(0.05)
        assert app.screen is screen  # still editing
        await pilot.press("escape")
        await pilot.pause(0.1)
        await pilot.click("#discard")
        await pilot.pause(0.1)
        assert isinstance(app.screen, RunsScreen)
        assert path.read_text() == before


async def test_leaving_a_clean_recipe_does_not_ask(tmp_path, app_factory):
    path = recipe_copy(tmp_path)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await open_editor(app, pilot, path)
        await pilot.press("escape")
        await pilot.pause(0.05)
        assert isinstance(app.screen, RunsScreen)


async def test_trust_remote_code_is_shown_prominently(tmp_path, app_factory):
    path = recipe_copy(tmp_path)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_editor(app, pilot, path)
        assert "trust_remote_code = true" not in screen_text(app)
        screen.query_one("#trust", Switch).value = True
        await pilot.pause(0.05)
        assert screen.recipe.get("model.trust_remote_code") is True
        assert "trust_remote_code = true" in screen_text(app)


async def test_fresh_template_switches_with_the_stage(app_factory):
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        app.new_run("grpo")
        await pilot.pause(0.1)
        screen = app.screen
        screen.query_one("#stage").value = "sft"
        await wait_for(pilot, lambda: screen.recipe.stage == "sft" and screen.query("#in-train-max_length"),
                       "the sft form")
        assert screen.recipe.get("train.max_length") == 96  # the sft template, not grpo with a new stage
        await pilot.press("escape")  # an untouched template leaves without asking
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), "the runs list")


async def test_save_as_for_a_new_recipe(tmp_path, app_factory):
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        app.new_run("sft")
        await pilot.pause(0.1)
        screen = app.screen
        screen.query_one("#in-train-max_steps", Input).value = "7"
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        answer = app.screen.query_one("#answer", Input)
        answer.value = str(tmp_path / "mine.toml")
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert app.screen is screen
        assert "max_steps = 7" in (tmp_path / "mine.toml").read_text()
        assert screen.recipe.path == (tmp_path / "mine.toml").resolve()


async def test_launch_refuses_an_invalid_recipe(tmp_path, app_factory, runs_dir):
    path = recipe_copy(tmp_path)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_editor(app, pilot, path)
        screen.query_one("#in-data-path", Input).value = "missing.jsonl"
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: any("not launched" in n for n in notices(app)), "the not-launched notice")
        assert app.screen is screen
        assert not any(runs_dir.iterdir())


async def test_launch_and_save_take_an_edit_whose_change_has_not_arrived(tmp_path, app_factory, runs_dir):
    """ctrl+r or ctrl+s in the same turn as the edit (a paste, a script's send-keys, a busy machine: Input.Changed
    is still queued) launch and save what the form shows, not the recipe as it was before the edit."""
    path = recipe_copy(tmp_path)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_editor(app, pilot, path)
        screen.query_one("#in-train-max_steps", Input).value = "7"
        screen.query_one("#zero", Select).value = 2
        screen.query_one("#liger", Switch).value = True
        screen.action_save()  # no await between the edits and the save
        saved = path.read_text()
        assert "max_steps = 7" in saved and "use_liger_kernel = true" in saved
        assert "zero_stage = 2" in saved and 'backend = "deepspeed"' in saved, "ZeRO switched the launcher"
        screen.query_one("#in-data-path", Input).value = "missing.jsonl"
        screen.action_launch()
        await wait_for(pilot, lambda: any("not launched" in n for n in notices(app)), "the not-launched notice")
        assert app.screen is screen
        assert not any(runs_dir.iterdir())


async def test_dataset_preview_shows_columns_and_fit(tmp_path, app_factory):
    path = recipe_copy(tmp_path)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_editor(app, pilot, path)
        await wait_for(pilot, lambda: "fits" in str(screen.query_one("#data-preview").render()), "the data preview")
        text = str(screen.query_one("#data-preview").render())
        assert "columns: prompt, answer" in text and "fits grpo" in text
        screen.query_one("#in-data-path", Input).value = str(ASSETS / "format-sft.jsonl")
        await wait_for(pilot, lambda: "columns do not fit grpo" in str(screen.query_one("#data-preview").render()),
                       "the misfit in the data preview")


async def test_zero_level_drives_launcher_estimate_and_command(tmp_path, app_factory):
    from textual.widgets import Static

    path = recipe_copy(tmp_path)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_editor(app, pilot, path)
        note = screen.query_one("#launch-note", Static)
        before = str(note.render())
        assert "memory per GPU" in before and "-m workbench.train" in before
        assert "torch.distributed.run" not in before
        screen.query_one("#zero", Select).value = 3
        await pilot.pause(0.2)
        assert screen.recipe.get("launch.zero_stage") == 3
        assert screen.recipe.get("launch.backend") == "deepspeed", "ZeRO needs a distributed launcher"
        after = str(note.render())
        assert "ZeRO 3" in after and "torch.distributed.run" in after


async def test_stage_specific_model_fields(tmp_path, app_factory):
    path = tmp_path / "ppo.toml"
    path.write_text((RECIPES / "ppo-tiny.toml").read_text().replace("../assets", str(ASSETS.parent)))
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_editor(app, pilot, path)
        field = next(i for i in screen.query(Input) if i.name == "model.reward_model")
        assert field.value == "builtin:tiny-rm"


async def test_launch_asks_before_running_a_reward_file(tmp_path, app_factory, monkeypatch):
    from workbench.tui.screens.modals import ConfirmModal

    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    path = recipe_copy(tmp_path)
    reward = tmp_path / "my_reward.py"
    reward.write_text("def short(completions, **kwargs):\n    return [0.0 for _ in completions]\n")
    path.write_text(path.read_text().replace('funcs = ["format", "correctness"]',
                                             f'funcs = ["format", "{reward}:short"]'))
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await open_editor(app, pilot, path)
        await pilot.press("ctrl+r")
        await pilot.pause(0.1)
        assert isinstance(app.screen, ConfirmModal)
        assert "def short" in app.screen.question and str(reward) in app.screen.question
        await pilot.press("escape")  # No: nothing launched
        await pilot.pause(0.1)
        assert not isinstance(app.screen, ConfirmModal)
        assert not any(app.runs_dir.iterdir()) if app.runs_dir.exists() else True


def dpo_copy(tmp_path):
    (tmp_path / "assets" / "data").mkdir(parents=True)
    shutil.copy(ASSETS / "prefs.jsonl", tmp_path / "assets" / "data")
    (tmp_path / "recipes").mkdir()
    target = tmp_path / "recipes" / "my-dpo.toml"
    shutil.copy(RECIPES / "dpo-tiny.toml", target)
    return target


async def test_stage_switch_after_edits_maps_the_recipe_with_a_notice(tmp_path, app_factory):
    path = dpo_copy(tmp_path)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_editor(app, pilot, path)
        screen.query_one("#in-train-max_steps", Input).value = "7"  # edited: no longer a fresh template
        await pilot.pause(0.05)
        screen.query_one("#stage").value = "sft"
        await wait_for(pilot, lambda: any("dpo → sft" in n for n in notices(app)), "the stage-switch notice")
        notice = next(n for n in notices(app) if "dpo → sft" in n)
        assert "train.beta (not in SFTConfig)" in notice and "train.loss_type" in notice
        assert "prefs.jsonl has columns prompt, chosen, rejected, but sft needs" in notice
        assert screen.recipe.stage == "sft" and screen.recipe.get("train.beta") is None
        assert screen.recipe.get("train.max_steps") == 7 and screen.recipe.get("train.max_length") == 96  # kept
        text = await wait_problems(pilot, screen, "needs")
        assert "unknown key 'beta'" not in text and "columns" in text
        dumped = screen.recipe.dumps()
        assert "# SFTConfig fields" in dumped and "DPOConfig" not in dumped
        head = dumped.split("\n\n")[0]  # the template header, retitled for sft
        assert head.startswith("# SFT of the built-in tiny model") and "DPO" not in head
        assert "#   workbench run recipes/dpo-tiny.toml" in head  # the command the old header gave stays


async def test_field_search_finds_fields_by_alias(tmp_path, app_factory):
    from workbench.tui.widgets.field_table import FieldTable

    path = recipe_copy(tmp_path)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_editor(app, pilot, path)
        table = screen.query_one(FieldTable)
        await wait_for(pilot, lambda: table.fields, "the fields table")
        search = screen.query_one("#field-search", Input)
        for word, field in (("lr", "learning_rate"), ("bs", "per_device_train_batch_size"), ("kl", "beta"),
                            ("accum", "gradient_accumulation_steps"), ("epochs", "num_train_epochs"),
                            ("warmup", "warmup_steps"), ("len", "max_completion_length"), ("temp", "temperature")):
            search.value = word
            await pilot.pause(0.05)
            assert table.current() == field, (word, table.current())


async def test_keys_switch_the_tabs(tmp_path, app_factory):
    path = recipe_copy(tmp_path)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_editor(app, pilot, path)
        tabs = screen.query_one(TabbedContent)
        await wait_for(pilot, lambda: "alt+1/2/3 Tabs" in screen_text(app), "alt+1/2/3 Tabs in the footer")
        await pilot.press("alt+2")
        await pilot.pause(0.05)
        assert tabs.active == "tab-train"
        await pilot.press("alt+3")
        await pilot.pause(0.05)
        assert tabs.active == "tab-fields" and app.focused.id == "field-search"
        await pilot.press("alt+1")
        await pilot.pause(0.05)
        assert tabs.active == "tab-basics"
        screen.query_one("#in-run-name", Input).value = ""
        await pilot.press("2")  # in a text field a digit is typed, not a tab switch
        await pilot.pause(0.05)
        assert tabs.active == "tab-basics" and screen.query_one("#in-run-name", Input).value == "2"
        screen.query_one("#trust", Switch).focus()
        await pilot.press("2")  # outside a text field it switches
        await pilot.pause(0.05)
        assert tabs.active == "tab-train"


@pytest.mark.parametrize("size,stage", [((80, 24), "grpo"), ((120, 30), "grpo"), ((80, 24), "reward")])
async def test_labels_are_never_cut(size, stage, app_factory):
    from workbench.core.stages import STAGES

    app = app_factory()
    async with app.run_test(size=size) as pilot:
        app.new_run(stage)
        await pilot.pause(0.1)
        screen = app.screen
        await pilot.press("alt+2")
        def shown_whole(field: str) -> bool:
            return any(line.lstrip().startswith(field + " ") for line in screen_text(app).splitlines())

        for field in STAGES[stage].key_fields:
            screen.query_one(f"#in-train-{field}", Input).focus()  # scrolls it into view
            await wait_for(pilot, lambda: shown_whole(field), f"{field} shown whole")


def row_shown(screen, key: str) -> bool:
    return screen.query_one(f"#in-{key.replace('.', '-')}", Input).parent.display


async def test_adapter_method_shows_its_own_fields(tmp_path, app_factory):
    from textual.widgets import Static

    path = recipe_copy(tmp_path)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_editor(app, pilot, path)
        await pilot.press("alt+2")
        await pilot.pause(0.05)
        assert "every weight trains" in str(screen.query_one("#peft-note", Static).render())
        assert not row_shown(screen, "peft.r") and not row_shown(screen, "peft.num_virtual_tokens")
        method = screen.query_one("#peft-method", Select)
        for choice, shown, hidden in (("lora", "peft.r", "peft.num_virtual_tokens"),
                                      ("ia3", "peft.feedforward_modules", "peft.alpha"),
                                      ("prefix", "peft.num_virtual_tokens", "peft.target_modules")):
            method.value = choice
            await wait_for(pilot, lambda: screen.recipe.get("peft.method") == choice
                           and row_shown(screen, shown) and not row_shown(screen, hidden), choice)
        assert "prefixes in every layer" in str(screen.query_one("#peft-note", Static).render())
        assert screen.query_one("#grad-ckpt", Switch).value is False, "prefix tuning trains without checkpointing"
        assert "train.gradient_checkpointing" not in screen.recipe.dumps()


async def test_checkpointing_liger_and_trackers_go_into_train(tmp_path, app_factory):
    path = recipe_copy(tmp_path)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_editor(app, pilot, path)
        await pilot.press("alt+2")
        await pilot.pause(0.05)
        ckpt = screen.query_one("#grad-ckpt", Switch)
        assert ckpt.value is True, "trl's default"
        note = str(screen.query_one("#launch-note").render())
        ckpt.value = False
        await pilot.pause(0.05)
        assert screen.recipe.get("train.gradient_checkpointing") is False
        assert str(screen.query_one("#launch-note").render()) != note, "the memory estimate follows"
        ckpt.value = True
        await pilot.pause(0.05)
        assert screen.recipe.get("train.gradient_checkpointing") is None, "back to the default: the key goes"
        screen.query_one("#liger", Switch).value = True
        screen.query_one("#report-to", Select).value = "tensorboard"
        await pilot.pause(0.05)
        assert screen.recipe.get("train.use_liger_kernel") is True
        assert screen.recipe.get("train.report_to") == "tensorboard"
        screen.query_one("#report-to", Select).value = "none"
        await pilot.pause(0.05)
        assert screen.recipe.get("train.report_to") is None, "the child's default stays none"


async def test_save_as_adds_toml_names_the_file_and_keeps_paths_working(tmp_path, app_factory, monkeypatch):
    path = recipe_copy(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(tmp_path)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_editor(app, pilot, path)
        await pilot.press("f2")
        await pilot.pause(0.1)
        app.screen.query_one("#answer", Input).value = str(elsewhere / "copy")
        await pilot.press("enter")
        await pilot.pause(0.1)
        saved = (elsewhere / "copy.toml").read_text()
        assert screen.recipe.path == (elsewhere / "copy.toml").resolve()
        assert "#   workbench run elsewhere/copy.toml" in saved and "recipes/grpo-tiny.toml" not in saved
        data_line = next(ln for ln in saved.splitlines() if ln.startswith("path = ") and "jsonl" in ln)
        assert str(tmp_path / "assets" / "data" / "arith-prompts.jsonl") in data_line  # resolves from the new folder
        assert "relative to this file" not in data_line
        assert path.read_text() == (RECIPES / "grpo-tiny.toml").read_text()  # the original is untouched
        await wait_problems(pilot, screen, "no problems")
