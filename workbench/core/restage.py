"""Moving an edited recipe to another stage: what the editor does when the stage changes after editing.

``switch_stage`` sets run.stage and maps the rest to the new stage: [train] keys the new trl config class does not
have (or whose value it cannot take) are dropped, what the new stage needs and the recipe lacks (reward functions, a
teacher, a reward model) comes from the new stage's template, and a header that is the old stage's template header
becomes the new one's. It returns the notices to show, naming every key it dropped or added. ``data_fit`` says
whether the dataset's columns fit the new stage (it reads the file's first rows, so the editor calls it off the UI
thread).

UI-free and torch-free.
"""
from __future__ import annotations

from workbench.core import comments, schema
from workbench.core.problems import BadInput
from workbench.core.recipe import Recipe
from workbench.core.stages import STAGES


def _class_name(config_class: str | None) -> str:
    return config_class.split(":")[-1] if config_class else ""


def _retitle(recipe: Recipe, old: str, new: str) -> bool:
    """The old stage's template header becomes the new stage's (naming the same file); a user's header stays."""
    from workbench.core.templates import UNNAMED, template

    head = comments.header_lines(recipe.text)
    old_text = template(old) if old in STAGES else ""
    if not head or head[0] not in comments.header_lines(old_text)[:1]:
        return False
    named = next((m.group(2) for m in map(comments.RUN_LINE.match, head) if m), UNNAMED)
    new_head = comments.header_lines(comments.name_file(template(new), named))
    body = recipe.text.split("\n")[len(head):]
    recipe.reparse("\n".join(new_head + body))
    return True


def switch_stage(recipe: Recipe, new: str, fields: dict | None) -> list[str]:
    """Move ``recipe`` to stage ``new``; ``fields`` is the new config class's schema (None: not known, keep [train]).
    Returns the notices (dropped keys, added keys) for the user."""
    from workbench.core.templates import template
    from workbench.core.validate import LIST_OR_STRING

    old, stage = recipe.stage, STAGES[new]
    _retitle(recipe, old, new)
    recipe.set("run.stage", new)
    notices = []
    train = recipe.section("train")
    cls = _class_name(stage.config_class)
    if stage.config_class is None and train:
        recipe.unset("train")
        notices.append(f"dropped [train] ({new} trains nothing): {', '.join(train)}")
    elif fields and train:
        dropped = []
        for key, value in train.items():
            if key not in fields:
                dropped.append(f"train.{key} (not in {cls})")
            elif not (isinstance(value, str) and (stage.config_class, key) in LIST_OR_STRING) and \
                    schema.check_value(value, fields[key]):
                dropped.append(f"train.{key} ({cls} wants {schema.check_value(value, fields[key])})")
        for item in dropped:
            recipe.unset(item.split(" ", 1)[0])
        if dropped:
            notices.append("dropped " + ", ".join(dropped))
    elif train and fields is None:
        notices.append(f"[train] not checked against {cls} (its field list is not available yet): see the "
                       "problems below")
    added = _needs(recipe, new, Recipe.parse(template(new)))
    if added:
        notices.append(f"added from the {new} template: " + ", ".join(added))
    return notices


def _needs(recipe: Recipe, new: str, tpl: Recipe) -> list[str]:
    """What stage ``new`` needs and the recipe lacks, taken from its template: reward functions, extra models."""
    stage, added = STAGES[new], []
    wanted = [f"model.{m}" for m in stage.needs_models]
    if stage.uses_rewards and not recipe.get("rewards.funcs") and not recipe.get("model.reward_model"):
        wanted.append("rewards.funcs")
    for key in wanted:
        value = tpl.get(key)
        if recipe.get(key) in (None, "", []) and value not in (None, "", []):
            recipe.set(key, value)
            added.append(f"{key} = {value!r}".replace("'", '"'))
    return added


def data_fit(recipe: Recipe, new: str) -> str | None:
    """None when the dataset fits stage ``new`` (or cannot be read: validation says why), else what is wrong."""
    from workbench.core import datafile
    from workbench.core.stages import match_format

    raw = recipe.get("data.path")
    if not isinstance(raw, str) or not raw:
        return None
    path = recipe.resolve_path(raw)
    if not path.is_file():
        return None
    try:
        peek = datafile.peek(path)
    except BadInput:
        return None
    stage = STAGES[new]
    if match_format(stage, peek.columns):
        return None
    wanted = " or ".join("{" + ", ".join(f.columns) + "}" for f in stage.formats)
    return f"the dataset {path.name} has columns {', '.join(peek.columns)}, but {new} needs {wanted}: pick another"
