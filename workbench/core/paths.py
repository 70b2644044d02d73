"""Where things live: the runs directory, the workbench cache, the project's shipped files.

Environment overrides: WORKBENCH_RUNS (runs directory, default ./runs), WORKBENCH_CACHE (built-in models,
trl schema cache; default $XDG_CACHE_HOME/workbench or ~/.cache/workbench).

Shipped files (the stage recipes and the small datasets they use): in a source checkout (an editable install)
they are the repository's top-level ``recipes/`` and ``assets/``; a wheel carries the same two folders as
package data in ``workbench/_data/`` (setup.py maps them there). Both places keep recipes/ and assets/ side by
side, so a shipped recipe's relative data path (``../assets/data/...``) resolves from either. The checkout wins.
"""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent


def _shipped_root() -> Path:
    """The folder that holds recipes/ and assets/: the source checkout, else the installed package data."""
    checkout = PACKAGE_DIR.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "recipes").is_dir() and (checkout / "assets").is_dir():
        return checkout
    from importlib import resources  # 12 ms of imports: only where there is no checkout

    # An installed wheel is always unpacked on disk (pip never installs zipped), so this is a real folder.
    return Path(str(resources.files("workbench") / "_data"))


SHIPPED_DIR = _shipped_root()
RECIPES_DIR = SHIPPED_DIR / "recipes"
ASSETS_DIR = SHIPPED_DIR / "assets"


def runs_dir(override: str | os.PathLike | None = None) -> Path:
    if override:
        return Path(override).expanduser().resolve()
    env = os.environ.get("WORKBENCH_RUNS")
    return Path(env).expanduser().resolve() if env else (Path.cwd() / "runs").resolve()


def cache_dir() -> Path:
    env = os.environ.get("WORKBENCH_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / "workbench").resolve()


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache on this machine (HF_HUB_CACHE, HF_HOME/hub, or ~/.cache/huggingface/hub)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path.home() / ".cache" / "huggingface" / "hub"


def display_path(path: str | os.PathLike, cwd: Path | None = None, relative: bool = True) -> str:
    """A path as the TUI shows it: relative to the current folder when inside it (and ``relative``), else from ~,
    else absolute."""
    p = Path(path)
    bases = ([(cwd or Path.cwd(), "")] if relative else []) + [(Path.home(), "~/")]
    for base, prefix in bases:
        try:
            return prefix + str(p.relative_to(base))
        except ValueError:
            continue
    return str(p)


def keep_end(text: str, room: int) -> str:
    """A path cut from the left to ``room`` characters (at least 2), so the file name survives."""
    return text if len(text) <= room else "…" + text[-(max(room, 2) - 1):]
