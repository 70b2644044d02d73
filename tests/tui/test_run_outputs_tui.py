"""Earlier runs' outputs in the TUI: the editor's dataset picker offers a best-of-k run's dataset.jsonl (run id,
stage, rows) and picking it fills data.path; the Samples tab shows a chat prompt stored as JSON text as
"system: … / user: …"."""
from __future__ import annotations

import json

from rich.console import Console

from tests.conftest import RECIPES
from tests.core.test_run_outputs import CHAT, SYSTEM, best_of_k_run
from tests.tui.screen_text import screen_text, wait_for
from workbench.tui.screens.editor import EditorScreen
from workbench.tui.screens.pick import PickModal
from workbench.tui.widgets.samples import render_step

SIZE = (140, 40)


def plain(renderable, width: int = 200) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_samples_tab_shows_a_json_chat_prompt_as_chat():
    rows = [{"step": 1, "group": 0, "prompt": json.dumps(CHAT), "completion": "<answer>5</answer>", "reward": 2.0}]
    text = plain(render_step(rows))
    assert f"prompt 0: system: {SYSTEM[:59]}… / user: What is 2 + 3?" in text
    assert '"role"' not in text
    lone = [dict(rows[0], prompt=json.dumps([{"role": "user", "content": "What is 7 + 1?"}]))]
    assert "prompt 0: What is 7 + 1?" in plain(render_step(lone))


async def test_dataset_picker_offers_a_best_of_k_runs_dataset(runs_dir, app_factory):
    rd = best_of_k_run(runs_dir, rows=3)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        app.open_recipe_file(RECIPES / "sft-tiny.toml")
        await pilot.pause(0.3)
        editor = app.screen
        assert isinstance(editor, EditorScreen)
        await pilot.click("#pick-data")
        await wait_for(pilot, lambda: isinstance(app.screen, PickModal), "the dataset picker")
        text = screen_text(app)
        assert f"{rd.id}/dataset.jsonl  (earlier run: best-of-k, 3 rows)" in text
        assert "arith-prompts.jsonl" in text, "the shipped assets are still offered"
        assert app.screen.options[0][0] == str(rd.path / "dataset.jsonl"), "earlier runs' datasets come first"
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert app.screen is editor and editor.recipe.get("data.path") == str(rd.path / "dataset.jsonl")
