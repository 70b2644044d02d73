"""Finding models and datasets on this machine for the recipe editor's pickers. UI-free, torch-free.

Sources, cheapest first, all read from the file system only (no network, no `datasets`, no `transformers`):
  models:   built-in tiny models, the Hugging Face hub cache (``models--org--name`` with a snapshot),
            final models of earlier runs (``run:RUN_ID``), local folders holding a config.json (under the
            current folder and $WORKBENCH_MODEL_DIRS, os.pathsep-separated)
  datasets: data files (jsonl/json/csv/parquet) under the shipped assets, the recipes folder, extra roots

Scans are shallow (a few levels) and capped so a huge home directory cannot stall the editor; callers still run
them in a worker thread.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from workbench.core.datafile import SUFFIXES
from workbench.core.models import BUILTIN_MODELS
from workbench.core.paths import ASSETS_DIR, RECIPES_DIR, hf_hub_cache

MAX_ENTRIES = 500  # per scan: enough for a picker, bounded for a slow file system
SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".cache", "checkpoints", "runs"}


@dataclass(frozen=True)
class Choice:
    value: str  # what goes into the recipe (model.path / data.path)
    label: str  # what the picker shows
    kind: str  # builtin | hub | run | local | file


# -- models ----------------------------------------------------------------------------------------------------
def builtin_models() -> list[Choice]:
    return [Choice(f"builtin:{name}", f"builtin:{name}  ({desc.split(',')[0].split(' (')[0]})", "builtin")
            for name, desc in BUILTIN_MODELS.items()]


def hub_cache_models(cache: Path | None = None) -> list[Choice]:
    """Hub model ids with at least one downloaded snapshot in the local hub cache."""
    root = Path(cache) if cache else hf_hub_cache()
    out = []
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return []
    for d in entries[:MAX_ENTRIES]:
        if not d.name.startswith("models--"):
            continue
        snaps = d / "snapshots"
        try:
            if not snaps.is_dir() or not any(snaps.iterdir()):
                continue
        except OSError:
            continue
        repo_id = d.name[len("models--"):].replace("--", "/")
        out.append(Choice(repo_id, f"{repo_id}  (hub cache)", "hub"))
    return out


def run_final_models(runs_dir: Path) -> list[Choice]:
    """``run:ID`` for every run in runs_dir that saved a final model, newest first."""
    out = []
    try:
        entries = sorted(Path(runs_dir).iterdir(), reverse=True)
    except OSError:
        return []
    for d in entries[:MAX_ENTRIES]:
        if (d / "final").is_dir() and (d / "status.json").is_file():
            out.append(Choice(f"run:{d.name}", f"run:{d.name}  (final model)", "run"))
    return out


def local_model_folders(roots: list[Path], depth: int = 2) -> list[Choice]:
    """Folders (up to ``depth`` levels under each root) that hold a transformers config.json."""
    out: list[Choice] = []
    seen: set[Path] = set()
    for root in roots:
        for d in _walk_dirs(Path(root), depth):
            if (d / "config.json").is_file() or (d / "adapter_config.json").is_file():
                rd = d.resolve()
                if rd not in seen:
                    seen.add(rd)
                    out.append(Choice(str(rd), f"{rd}  (local folder)", "local"))
            if len(out) >= MAX_ENTRIES:
                return out
    return out


def model_choices(runs_dir: Path, roots: list[Path] | None = None) -> list[Choice]:
    return (builtin_models() + run_final_models(runs_dir) + hub_cache_models()
            + local_model_folders(roots if roots is not None else [Path.cwd(), *_env_roots()]))


def needs_remote_code(folder: Path) -> bool:
    """True when a model folder's config.json maps to custom code (``auto_map``): trust_remote_code would run it."""
    try:
        config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and bool(config.get("auto_map"))


# -- datasets --------------------------------------------------------------------------------------------------
def dataset_files(roots: list[Path] | None = None, depth: int = 2) -> list[Choice]:
    """Data files under the shipped assets, the recipes folder and ``roots``; de-duplicated, sorted per root."""
    roots = [ASSETS_DIR, RECIPES_DIR] + list(roots or [])
    out: list[Choice] = []
    seen: set[Path] = set()
    for root in roots:
        found = []
        for d in _walk_dirs(Path(root), depth):
            try:
                files = [p for p in d.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES]
            except OSError:
                continue
            found.extend(files)
        for p in sorted(found):
            rp = p.resolve()
            if rp in seen:
                continue
            seen.add(rp)
            out.append(Choice(str(rp), f"{_short(rp)}  ({_size(rp)})", "file"))
            if len(out) >= MAX_ENTRIES:
                return out
    return out


# -- helpers ---------------------------------------------------------------------------------------------------
def _walk_dirs(root: Path, depth: int):
    """root and its sub-folders down to ``depth`` levels, skipping hidden and bulky folders."""
    if not root.is_dir():
        return
    stack = [(root, 0)]
    count = 0
    while stack:
        d, level = stack.pop()
        yield d
        count += 1
        if count > MAX_ENTRIES or level >= depth:
            continue
        try:
            subs = sorted((p for p in d.iterdir() if p.is_dir() and not p.is_symlink()), reverse=True)
        except OSError:
            continue
        for p in subs:
            if p.name in SKIP_DIRS or p.name.startswith("."):
                continue
            stack.append((p, level + 1))


def _short(path: Path) -> str:
    """The path relative to the current folder, else to the home folder (~/...), else absolute."""
    for base, prefix in ((Path.cwd(), ""), (Path.home(), "~/")):
        try:
            return prefix + str(path.relative_to(base))
        except ValueError:
            continue
    return str(path)


def _size(path: Path) -> str:
    try:
        n = path.stat().st_size
    except OSError:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _env_roots() -> list[Path]:
    """Extra folders to scan named in WORKBENCH_MODEL_DIRS (os.pathsep-separated)."""
    raw = os.environ.get("WORKBENCH_MODEL_DIRS", "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p]
