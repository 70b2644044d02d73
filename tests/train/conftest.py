"""Unit layer of the training child: a stage Context built the way entry.main builds it, from a shipped recipe
and the built-in tiny models, in one process (no runner, no launcher)."""
from __future__ import annotations

import pytest

from tests.conftest import RECIPES


@pytest.fixture
def stage_ctx(tmp_path):
    """``stage_ctx("sft-tiny.toml", "train.max_steps=2", ...)`` -> a Context ready for BUILDERS[stage](ctx)."""

    def make(recipe_file: str, *sets: str):
        from transformers import AutoTokenizer

        from workbench.core.recipe import Recipe
        from workbench.core.rundir import RunDir
        from workbench.core.supervisor import freeze
        from workbench.train import data
        from workbench.train.adapters import peft_config
        from workbench.train.callbacks import RunLogger, StopControl
        from workbench.train.entry import Context, resolve_model, train_kwargs

        recipe = Recipe.load(RECIPES / recipe_file)
        recipe.apply_overrides(list(sets))
        recipe = freeze(recipe)  # absolute paths, as in a run directory's recipe.toml
        rd = RunDir(tmp_path / "run")
        rd.path.mkdir(exist_ok=True)
        ctx = Context(recipe, rd, True, resolve_model(recipe.get("model.path"), rd))
        ctx.tokenizer = AutoTokenizer.from_pretrained(ctx.model_path)
        ctx.dataset = data.load(recipe)
        ctx.train_kwargs = train_kwargs(recipe, rd)
        ctx.peft_config = peft_config(recipe)
        ctx.logger, ctx.stop = RunLogger(rd, True), StopControl(rd)
        return ctx

    return make
