"""Recipe templates: the shipped recipe of a stage when there is one, else a minimal skeleton.

A template's header names the file it is written to and the command that runs it (``output``; "<this file>" while
it has no name yet, e.g. printed to stdout or open in the editor before the first save). Its data path is made
absolute (shipped paths are relative to recipes/), and the template comments that no longer hold are refreshed.
"""
from __future__ import annotations

import tomlkit

from workbench.core import comments
from workbench.core.paths import RECIPES_DIR
from workbench.core.stages import STAGES

UNNAMED = "<this file>"


def template(stage: str, output: str | None = None) -> str:
    shipped = RECIPES_DIR / f"{stage}-tiny.toml"
    if shipped.is_file():
        # Paths in shipped recipes are relative to recipes/; make the data path work from anywhere.
        text = shipped.read_text(encoding="utf-8")
        text = text.replace('"../assets/', f'"{RECIPES_DIR.parent / "assets"}/')
    else:
        s = STAGES[stage]
        text = (f"# {s.title}\n# {s.description}\n#   workbench run {UNNAMED}\n\n[run]\nname = \"{stage}\"\n"
                f"stage = \"{stage}\"\n\n[model]\npath = \"builtin:tiny-lm\"\n\n[data]\npath = \"\"\n\n[train]\n"
                "max_steps = 10\n")
    text = comments.name_file(text, comments.shown_path(output) if output else UNNAMED)
    doc = tomlkit.parse(text)
    comments.refresh(doc)  # e.g. "relative to this file" on the now absolute data path
    return tomlkit.dumps(doc)


def all_fields_comment(stage: str) -> str:
    """Every field of the stage's trl config, commented out, with its default and help (needs the schema)."""
    from workbench.core import schema

    if not STAGES[stage].config_class:  # best-of-k: no trl trainer, its keys live under [generate]
        return f"\n# {stage} has no trl config class: its settings are the [generate] keys above.\n"
    fields = schema.stage_fields(STAGES[stage].config_class)
    lines = [f"\n# Every {STAGES[stage].config_class.split(':')[-1]} field (uncomment under [train] to set):"]
    for name, desc in sorted(fields.items()):
        default = desc.get("default")
        shown = "(unset)" if default is None else repr(default).replace("'", '"').replace("True", "true").replace(
            "False", "false")
        help_ = desc.get("help", "")
        lines.append(f"# {name} = {shown}" + (f"    # {help_[:100]}" if help_ else ""))
    return "\n".join(lines) + "\n"
