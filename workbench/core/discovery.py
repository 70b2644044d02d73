"""Finding models and datasets on this machine for the recipe editor's pickers, and the one reader of the Hugging
Face hub cache. UI-free, torch-free.

Sources, cheapest first, all read from the file system only (no network, no `datasets`, no `transformers`):
  models:   built-in tiny models, the Hugging Face hub cache (``huggingface_hub.scan_cache_dir``: repo id, revisions,
            size), final models of earlier runs (``run:RUN_ID``), local folders holding a config.json (under the
            current folder and $WORKBENCH_MODEL_DIRS, os.pathsep-separated). Each comes with what its config.json
            says (``describe``: parameters, architecture, chat template, size).
  datasets: datasets earlier runs wrote (RUN_DIR/dataset.jsonl of best-of-k and distill-offline: run id, stage,
            rows), data files (jsonl/json/csv/parquet) under the shipped assets, the recipes folder, extra roots

The hub cache: listing it (the model picker) goes through ``scan_cache_dir``, imported lazily there only
(huggingface_hub's import pulls an HTTP client, ~0.3 s). Looking up ONE repo (``hub_snapshot``: validation, the
estimator, the rules that read config.json, ``workbench eval``) follows the same layout the hub library writes
(``<type>s--ORG--NAME/refs/main`` -> ``snapshots/<commit>/``) without importing it. Nothing else in the project reads
the cache's layout.

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
class ModelInfo:
    """What a model folder's files say, without loading it."""

    params: int | None = None  # from the safetensors headers (exact), else from config.json
    architecture: str = ""  # config.json architectures[0] (else model_type); "<method> adapter on <base>"
    chat_template: bool | None = None  # None: the folder cannot tell (no tokenizer config)
    size: int | None = None  # bytes on disk

    def summary(self) -> str:
        parts = [p for p in (_size_text(self.size) if self.size is not None else "",
                             f"{_count_text(self.params)} params" if self.params else "", self.architecture,
                             {True: "chat template", False: "no chat template", None: ""}[self.chat_template]) if p]
        return " · ".join(parts)


@dataclass(frozen=True)
class Choice:
    value: str  # what goes into the recipe (model.path / data.path)
    label: str  # what the picker shows
    kind: str  # builtin | hub | run | local | file
    info: ModelInfo | None = None


# -- models ----------------------------------------------------------------------------------------------------
def builtin_models() -> list[Choice]:
    return [Choice(f"builtin:{name}", f"builtin:{name}  ({desc.split(',')[0].split(' (')[0]})", "builtin")
            for name, desc in BUILTIN_MODELS.items()]


def hub_cache_models(cache: Path | None = None) -> list[Choice]:
    """Model repos in the hub cache with at least one snapshot, as ``scan_cache_dir`` sees them (sorted by id)."""
    from huggingface_hub import scan_cache_dir  # lazy: the picker only (see the module docstring)
    from huggingface_hub.errors import CacheNotFound

    root = Path(cache) if cache else hf_hub_cache()
    try:
        scanned = scan_cache_dir(root)
    except (CacheNotFound, OSError, ValueError):
        return []
    out = []
    for repo in sorted(scanned.repos, key=lambda r: r.repo_id)[:MAX_ENTRIES]:
        if repo.repo_type != "model" or not repo.revisions:
            continue
        rev = next((r for r in repo.revisions if "main" in r.refs), None) or \
            max(repo.revisions, key=lambda r: r.last_modified)
        info = describe(Path(rev.snapshot_path), size=repo.size_on_disk)
        out.append(Choice(repo.repo_id, f"{repo.repo_id}  (hub cache: {info.summary()})", "hub", info))
    return out


def hub_snapshot(repo_id: str, kind: str = "model", cache: Path | None = None) -> Path | None:
    """The snapshot folder a load of ``repo_id`` would use from the hub cache (the revision refs/main names, else the
    newest snapshot), or None when the repo has no snapshot here. ``kind``: model | dataset | space."""
    if not repo_id or repo_id.startswith(("/", ".")) or ".." in repo_id.split("/"):
        return None
    repo = (Path(cache) if cache else hf_hub_cache()) / f"{kind}s--{repo_id.replace('/', '--')}"
    try:
        main = (repo / "refs" / "main").read_text(encoding="utf-8").strip()
    except OSError:
        main = ""
    if main and (repo / "snapshots" / main).is_dir():
        return repo / "snapshots" / main
    try:
        snaps = [p for p in (repo / "snapshots").iterdir() if p.is_dir()]
    except OSError:
        return None
    return max(snaps, key=lambda p: p.stat().st_mtime) if snaps else None


def describe(folder: Path, size: int | None = None) -> ModelInfo:
    """Parameters, architecture and chat template of a model folder (a snapshot, a run's final/, a local folder)."""
    from workbench.core import estimate

    folder = Path(folder)
    config = _json(folder / "config.json")
    adapter = _json(folder / "adapter_config.json") if config is None else None
    arch, params = "", None
    if isinstance(config, dict):
        archs = config.get("architectures")
        arch = archs[0] if isinstance(archs, list) and archs and isinstance(archs[0], str) else \
            str(config.get("model_type") or "")
        try:
            params = estimate.safetensors_params(folder) or estimate.shape_from_config(config).params
        except (OSError, ValueError, TypeError, KeyError, ZeroDivisionError):
            params = None
    elif isinstance(adapter, dict):
        base = str(adapter.get("base_model_name_or_path") or "?")
        method = str(adapter.get("peft_type") or "peft").lower()
        arch = f"{method} adapter on {Path(base).name if base.startswith('/') else base}"
    if size is None:
        size = _folder_size(folder)
    return ModelInfo(params, arch, has_chat_template(folder), size)


def has_chat_template(folder: Path) -> bool | None:
    """Whether a model folder's tokenizer carries a chat template; None when the folder cannot tell."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    if any((folder / n).is_file() for n in ("chat_template.jinja", "chat_template.json")) or \
            (folder / "additional_chat_templates").is_dir():
        return True
    config = _json(folder / "tokenizer_config.json")
    return bool(config.get("chat_template")) if isinstance(config, dict) else None


def run_final_models(runs_dir: Path) -> list[Choice]:
    """``run:ID`` for every run in runs_dir that saved a final model, newest first."""
    out = []
    try:
        entries = sorted(Path(runs_dir).iterdir(), reverse=True)
    except OSError:
        return []
    for d in entries[:MAX_ENTRIES]:
        if (d / "final").is_dir() and (d / "status.json").is_file():
            info = describe(d / "final")
            out.append(Choice(f"run:{d.name}", f"run:{d.name}  (final model: {info.summary()})", "run", info))
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
                    info = describe(rd)
                    out.append(Choice(str(rd), f"{rd}  (local folder: {info.summary()})", "local", info))
            if len(out) >= MAX_ENTRIES:
                return out
    return out


def model_choices(runs_dir: Path, roots: list[Path] | None = None) -> list[Choice]:
    return (builtin_models() + run_final_models(runs_dir) + hub_cache_models()
            + local_model_folders(roots if roots is not None else [Path.cwd(), *_env_roots()]))


def needs_remote_code(folder: Path) -> bool:
    """True when a model folder's config.json maps to custom code (``auto_map``): trust_remote_code would run it."""
    config = _json(Path(folder) / "config.json")
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


DATASET_FILE = "dataset.jsonl"  # what best-of-k and distill-offline write into their run directory


@dataclass(frozen=True)
class RunDataset:
    """A dataset an earlier run wrote (RUN_DIR/dataset.jsonl: prompt/completion rows an sft stage can train on)."""

    path: Path
    run: str  # the run id
    stage: str
    state: str
    rows: int | None  # None: the file cannot be read

    def label(self) -> str:
        state = "" if self.state == "completed" else f", {self.state}"
        rows = "?" if self.rows is None else f"{self.rows:,}"
        return f"{self.run}/{self.path.name}  (earlier run: {self.stage or '?'}, {rows} rows{state})"


def run_dataset(run_dir: Path) -> RunDataset | None:
    """The dataset a run wrote, if it wrote one."""
    d = Path(run_dir)
    path = d / DATASET_FILE
    if not path.is_file():
        return None
    status = _json(d / "status.json")
    status = status if isinstance(status, dict) else {}
    return RunDataset(path.resolve(), d.name, str(status.get("stage") or ""), str(status.get("state") or "?"),
                      count_rows(path))


def run_datasets(runs_dir: Path) -> list[RunDataset]:
    """Every run in runs_dir that wrote a dataset, newest first."""
    try:
        entries = sorted(Path(runs_dir).iterdir(), reverse=True)
    except OSError:
        return []
    found = (run_dataset(d) for d in entries[:MAX_ENTRIES] if (d / "status.json").is_file())
    return [r for r in found if r is not None]


def count_rows(path: Path, block: int = 1 << 20) -> int | None:
    """Lines of a jsonl file (a last line without its newline counts), read a block at a time."""
    n, last = 0, b"\n"
    try:
        with open(path, "rb") as f:
            while chunk := f.read(block):
                n += chunk.count(b"\n")
                last = chunk[-1:]
    except OSError:
        return None
    return n + (last != b"\n")


def dataset_choices(runs_dir: Path, roots: list[Path] | None = None) -> list[Choice]:
    """What the dataset picker offers: earlier runs' datasets (newest first), then data files (``dataset_files``)."""
    runs = [Choice(str(r.path), r.label(), "run") for r in run_datasets(runs_dir)]
    return runs + dataset_files(roots)


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
        return _size_text(path.stat().st_size)
    except OSError:
        return "?"


def _size_text(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _count_text(n: int) -> str:
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.1f}{unit}" if n < 10 * div else f"{n / div:.0f}{unit}"
    return str(n)


def _folder_size(folder: Path) -> int | None:
    """Bytes of the files in a model folder (links followed: a hub snapshot links to its blobs); one level."""
    try:
        return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    except OSError:
        return None


def _json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _env_roots() -> list[Path]:
    """Extra folders to scan named in WORKBENCH_MODEL_DIRS (os.pathsep-separated)."""
    raw = os.environ.get("WORKBENCH_MODEL_DIRS", "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p]
