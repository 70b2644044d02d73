"""Where things live: the runs directory, the workbench cache, the project's shipped files.

Environment overrides: WORKBENCH_RUNS (runs directory, default ./runs), WORKBENCH_CACHE (built-in models,
trl schema cache; default $XDG_CACHE_HOME/workbench or ~/.cache/workbench).
"""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent
# The source checkout (editable install): recipes/ and assets/ sit beside the package.
PROJECT_DIR = PACKAGE_DIR.parent
RECIPES_DIR = PROJECT_DIR / "recipes"
ASSETS_DIR = PROJECT_DIR / "assets"


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
