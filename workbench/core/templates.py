"""Recipe templates: the shipped recipe of a stage when there is one, else a minimal skeleton."""
from __future__ import annotations

from workbench.core.paths import RECIPES_DIR
from workbench.core.stages import STAGES


def template(stage: str) -> str:
    shipped = RECIPES_DIR / f"{stage}-tiny.toml"
    if shipped.is_file():
        # Paths in shipped recipes are relative to recipes/; make the data path work from anywhere.
        text = shipped.read_text(encoding="utf-8")
        return text.replace('"../assets/', f'"{RECIPES_DIR.parent / "assets"}/')
    s = STAGES[stage]
    return (f"# {s.title}\n# {s.description}\n\n[run]\nname = \"{stage}\"\nstage = \"{stage}\"\n\n"
            "[model]\npath = \"builtin:tiny-lm\"\n\n[data]\npath = \"\"\n\n[train]\nmax_steps = 10\n")


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
