"""The stage catalogue (workbench/core/stages.py): each stage is one declaration, one builder and one recipe.

Light: the builders are found by reading their modules' source (no torch/trl import); tests/train/test_builders.py
imports them. The declared chart and headline keys are checked against real runs in tests/e2e/test_stages.py.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import RECIPES
from workbench.core.recipe import Recipe
from workbench.core.stages import STAGES

ROOT = Path(__file__).resolve().parents[2]
DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


@pytest.mark.parametrize("name", list(STAGES))
def test_every_stage_names_a_builder_that_exists(name):
    spec = STAGES[name].builder
    assert DOTTED.match(spec), f"{name}: builder {spec!r} is not 'module:function'"
    module, func = spec.split(":")
    assert module.startswith("workbench.train.stages."), "builders live in workbench/train/stages/"
    source = ROOT / (module.replace(".", "/") + ".py")
    assert source.is_file(), f"{name}: no module {module}"
    defs = {n.name for n in ast.parse(source.read_text()).body if isinstance(n, ast.FunctionDef)}
    assert func in defs, f"{name}: {module} defines no {func}"


@pytest.mark.parametrize("name", list(STAGES))
def test_every_stage_ships_a_tiny_recipe_of_its_stage(name):
    path = RECIPES / f"{name}-tiny.toml"
    assert path.is_file(), f"a new stage needs recipes/{name}-tiny.toml"
    assert Recipe.load(path).stage == name


@pytest.mark.parametrize("name", list(STAGES))
def test_every_stage_declaration_is_well_formed(name):
    s = STAGES[name]
    assert s.name == name
    assert s.config_class is None or DOTTED.match(s.config_class), s.config_class
    assert s.config_class is not None or not s.trains_model, "a stage without a trl config trains nothing"
    assert s.formats and s.charts and s.headline, "formats, the monitor's charts and the headline keys"
    titles = [c.title for c in s.charts]
    assert len(set(titles)) == len(titles), "chart titles are their ids"
    assert all(c.keys for c in s.charts)
    assert set(s.generate_keys) <= {"k", "max_new_tokens", "temperature", "threshold"}
    assert bool(s.generate_keys) == s.generates
    assert not (s.groups and "num_generations" not in s.trl_defaults), "the group size trl uses when unset"
    assert not set(s.needs_models) & set(s.optional_models)
