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
