"""Consent before a recipe runs user Python code (reward-function files).

A recipe may name "path/to/rewards.py:function"; the training child imports that file. The first time a given
file content is about to run, the user reviews it and says yes: the CLI with --allow-code, the TUI in a dialog
that shows the file. Approvals are remembered by SHA-256 of the file's bytes (so an edited file asks again) in
$WORKBENCH_CACHE/approved-code.json.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from workbench.core.atomic import read_json, write_json_atomic
from workbench.core.paths import cache_dir
from workbench.core.recipe import Recipe
from workbench.core.rewards import parse_reward_ref


def approvals_path() -> Path:
    return cache_dir() / "approved-code.json"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def code_files(recipe: Recipe) -> list[Path]:
    funcs = recipe.get("rewards.funcs", [])
    out = []
    for raw in funcs if isinstance(funcs, list) else []:
        ref = parse_reward_ref(raw, recipe.resolve_path) if isinstance(raw, str) else None
        if ref and ref.file and ref.file.is_file() and ref.file not in out:
            out.append(ref.file)
    return out


def unapproved(recipe: Recipe) -> list[Path]:
    known = read_json(approvals_path(), {}) or {}
    return [p for p in code_files(recipe) if known.get(str(p.resolve())) != digest(p)]


def approve(paths: list[Path]) -> None:
    known = read_json(approvals_path(), {}) or {}
    for p in paths:
        known[str(p.resolve())] = digest(p)
    approvals_path().parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(approvals_path(), known)


def review_text(paths: list[Path], max_lines: int = 40) -> str:
    parts = []
    for p in paths:
        lines = p.read_text(encoding="utf-8", errors="replace").splitlines()
        shown = "\n".join(lines[:max_lines]) + (f"\n... ({len(lines) - max_lines} more lines)"
                                                if len(lines) > max_lines else "")
        parts.append(f"{p}  (sha256 {digest(p)[:12]})\n{shown}")
    return "\n\n".join(parts)
