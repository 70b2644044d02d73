"""Pipelines: a folder of recipes run in file-name order, each stage starting from the previous one's model.

In a pipeline recipe, ``run:previous`` (in [model] path, teacher or reward_model) names the final model of
the stage before it. Every recipe is validated before the first stage starts. Each run's status records the
pipeline name and its parent run, so the runs list shows them as linked.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from workbench.core.problems import BadInput, Problem, errors
from workbench.core.recipe import Recipe
from workbench.core.validate import validate_recipe

MODEL_KEYS = ("model.path", "model.teacher", "model.reward_model")


@dataclass
class Pipeline:
    name: str
    recipes: list[Recipe]


def load_pipeline(target: str | Path, runs_dir: Path) -> Pipeline:
    target = Path(target)
    if target.is_dir():
        files = sorted(target.glob("*.toml"))
        name = target.name
    else:
        raise BadInput(Problem(str(target), "", "a pipeline is a folder of recipes",
                               "give the folder (its *.toml files run in name order)"))
    if not files:
        raise BadInput(Problem(str(target), "", "holds no *.toml recipes", "add recipes, e.g. 01-sft.toml"))
    recipes, problems = [], []
    for i, f in enumerate(files):
        try:
            r = Recipe.load(f)
        except BadInput as e:
            problems += e.problems
            continue
        problems += validate_recipe(r, runs_dir, in_pipeline=True)
        if i == 0 and any(r.get(k) == "run:previous" for k in MODEL_KEYS):
            problems.append(Problem(str(f), "model.path", "the first stage has no previous stage",
                                    "name a model (e.g. builtin:tiny-lm)"))
        recipes.append(r)
    if errors(problems):
        raise BadInput(problems)
    return Pipeline(name, recipes)


def link(recipe: Recipe, previous_run_id: str | None) -> Recipe:
    """A copy of the recipe with run:previous replaced by the previous stage's run id."""
    linked = Recipe.parse(recipe.dumps(), recipe.path)
    for key in MODEL_KEYS:
        if linked.get(key) == "run:previous" and previous_run_id:
            linked.set(key, f"run:{previous_run_id}")
    return linked
