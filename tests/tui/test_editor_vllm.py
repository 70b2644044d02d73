"""The editor's vLLM rows (GRPO/RLOO): the mode choice writes trl's own use_vllm / vllm_mode, server GPUs go to
[vllm], the launch note shows the server command, and validation says what this machine lacks."""
from __future__ import annotations

import shutil

from textual.widgets import Input, Select, Static, TabbedContent

from tests.conftest import ASSETS, RECIPES
from tests.tui.screen_text import wait_for

SIZE = (120, 40)


async def test_vllm_server_mode_from_the_form(tmp_path, app_factory):
    (tmp_path / "assets" / "data").mkdir(parents=True)
    shutil.copy(ASSETS / "arith-prompts.jsonl", tmp_path / "assets" / "data")
    (tmp_path / "recipes").mkdir()
    path = tmp_path / "recipes" / "grpo-tiny.toml"
    shutil.copy(RECIPES / "grpo-tiny.toml", path)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        app.edit_recipe(path.read_text(), path)
        await pilot.pause(0.1)
        screen = app.screen
        screen.query_one(TabbedContent).active = "tab-train"
        await pilot.pause(0.05)
        screen.query_one("#vllm-mode", Select).value = "server"
        await pilot.pause(0.05)
        assert screen.recipe.get("train.use_vllm") is True and screen.recipe.get("train.vllm_mode") == "server"
        gpus = screen.query_one("#in-vllm-server_gpus", Input)
        gpus.focus()
        await pilot.press(*"[1]")
        await pilot.pause(0.05)
        assert screen.recipe.get("vllm.server_gpus") == [1]
        note = str(screen.query_one("#launch-note", Static).render())
        assert "vLLM server first (GPUs [1]" in note and "trl.scripts.vllm_serve" in note
        # validation is debounced and runs in a worker
        await wait_for(pilot, lambda: "vLLM generation needs a GPU" in str(screen.query_one("#problems").render()),
                       "the GPU problem")
        await pilot.press("ctrl+s")
        await pilot.pause(0.05)
        saved = path.read_text()
        assert "use_vllm = true" in saved and 'vllm_mode = "server"' in saved and "server_gpus = [1]" in saved
        screen.query_one("#vllm-mode", Select).value = "off"
        await pilot.pause(0.05)
        assert screen.recipe.get("train.use_vllm") is None and screen.recipe.get("train.vllm_mode") is None
