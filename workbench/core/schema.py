"""The field schema of each stage's trl config class (names, types, defaults, help), without importing trl here.

Importing trl costs about 5 s, so the schema is extracted once per (trl, transformers) version pair by a child
process (``python -m workbench.train.schema``) and cached as JSON under the workbench cache. Later calls read
the JSON (milliseconds).

A field's type is reduced to a small descriptor: {"kinds": ["int", "null"], "choices": [...]}; kinds are
bool, int, float, str, list, dict, null, any.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from workbench.core.atomic import write_json_atomic
from workbench.core.paths import cache_dir


class SchemaUnavailable(RuntimeError):
    pass


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "missing"


def schema_path() -> Path:
    return cache_dir() / "schema" / f"trl-{_version('trl')}-transformers-{_version('transformers')}.json"


_memo: dict | None = None


def load_schema(timeout: float = 120.0) -> dict:
    """{config_class: {field: {"kinds", "choices", "default", "help"}}} for every stage's config class."""
    global _memo
    if _memo is not None:
        return _memo
    from workbench.core.stages import STAGES

    classes = sorted({s.config_class for s in STAGES.values() if s.config_class})
    path = schema_path()
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        if all(c in cached for c in classes):  # a newer workbench may add stages
            _memo = cached
            return _memo
    except (FileNotFoundError, json.JSONDecodeError):
        pass
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "workbench.train.schema", *classes],
            capture_output=True, text=True, timeout=timeout, env={**os.environ, "TRANSFORMERS_VERBOSITY": "error"},
        )
    except subprocess.TimeoutExpired as e:
        raise SchemaUnavailable(f"extracting the trl config schema took over {timeout:.0f} s") from e
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise SchemaUnavailable(f"could not read trl's config classes: {last}")
    data = json.loads(proc.stdout)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, data)
    _memo = data
    return data


def stage_fields(config_class: str) -> dict:
    return load_schema().get(config_class, {})


def check_value(value, desc: dict) -> str | None:
    """None when value fits the field descriptor, else a short description of the expected type."""
    kinds = desc.get("kinds") or ["any"]
    choices = desc.get("choices")
    if choices and isinstance(value, str):
        return None if value in choices else "one of " + ", ".join(map(str, choices))
    if "any" in kinds:
        return None
    ok = {
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "str": isinstance(value, str),
        "list": isinstance(value, list),
        "dict": isinstance(value, dict),
    }
    if any(ok.get(k, False) for k in kinds):
        return None
    if choices:
        return "one of " + ", ".join(map(str, choices))
    names = {"bool": "true/false", "int": "an integer", "float": "a number", "str": "a string", "list": "a list",
             "dict": "a table"}
    return " or ".join(names[k] for k in kinds if k in names) or "another type"
