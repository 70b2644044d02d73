"""The recipe editor: edits keep comments on save, unsaved prompt, inline validation, template switching, launch."""
from __future__ import annotations

import shutil

from textual.widgets import Input, Switch, TabbedContent

from tests.conftest import ASSETS, RECIPES
from tests.tui.screen_text import notices, screen_text
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
    for _ in range(60):
        await pilot.pause(0.05)
        text = str(screen.query_one("#problems").render())
        if contains in text:
            return text
    raise AssertionError(f"'{contains}' never appeared in the problems panel: {text}")


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
        assert saved.startswith("# GRPO on the built-in tiny model")
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
        await pilot.pause(0.2)
        assert screen.recipe.stage == "sft"
        assert screen.recipe.get("train.max_length") == 96  # the sft template, not grpo with a new stage
        assert screen.query("#in-train-max_length")
        await pilot.press("escape")  # an untouched template leaves without asking
        await pilot.pause(0.05)
        assert isinstance(app.screen, RunsScreen)


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
        for _ in range(60):
            await pilot.pause(0.05)
            if any("not launched" in n for n in notices(app)):
                break
        assert any("not launched" in n for n in notices(app))
        assert app.screen is screen
        assert not any(runs_dir.iterdir())


async def test_dataset_preview_shows_columns_and_fit(tmp_path, app_factory):
    path = recipe_copy(tmp_path)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_editor(app, pilot, path)
        for _ in range(40):
            await pilot.pause(0.05)
            text = str(screen.query_one("#data-preview").render())
            if "fits" in text:
                break
        assert "columns: prompt, answer" in text and "fits grpo" in text
        screen.query_one("#in-data-path", Input).value = str(ASSETS / "format-sft.jsonl")
        for _ in range(40):
            await pilot.pause(0.05)
            text = str(screen.query_one("#data-preview").render())
            if "do not fit" in text:
                break
        assert "columns do not fit grpo" in text


async def test_zero_level_drives_launcher_estimate_and_command(tmp_path, app_factory):
    from textual.widgets import Select, Static

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
