"""Recently used recipe files, most recent first: `$WORKBENCH_CACHE/recent-recipes.json` (a JSON list of absolute
paths, at most ``LIMIT``). Opening or saving a recipe in the TUI remembers it; a file that has gone stays listed
until someone tries to open it (the open-recipe screen says so and forgets it).

UI-free and torch-free.
"""
from __future__ import annotations

import json
from pathlib import Path

from workbench.core.atomic import write_json_atomic
from workbench.core.paths import cache_dir

LIMIT = 20


def recent_path() -> Path:
    return cache_dir() / "recent-recipes.json"


def recent_files() -> list[Path]:
    try:
        data = json.loads(recent_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [Path(p) for p in data if isinstance(p, str)] if isinstance(data, list) else []


def _write(files: list[Path]) -> None:
    try:
        recent_path().parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(recent_path(), [str(p) for p in files[:LIMIT]])
    except OSError:
        pass  # a read-only cache only costs the list


def remember(path: str | Path) -> None:
    p = Path(path).expanduser().resolve()
    _write([p] + [f for f in recent_files() if f != p])


def forget(path: str | Path) -> None:
    p = Path(path).expanduser().resolve()
    _write([f for f in recent_files() if f != p])
