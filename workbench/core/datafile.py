"""Light dataset inspection: columns, first rows, row count and format problems, without `datasets`.

Reads local jsonl/json/csv files with the standard library (parquet through pyarrow, imported only for parquet).
Problems name the file and the line.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from workbench.core.problems import BadInput, Problem

SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
MAX_SCAN_BYTES = 64 * 1024 * 1024  # validate every line of files up to this size


@dataclass
class DataPeek:
    path: Path
    format: str
    columns: list[str]
    rows: list[dict] = field(default_factory=list)  # first rows, for previews
    num_rows: int = 0
    complete: bool = True  # False when the file was too big to scan fully


def peek(path: Path, key: str = "data.path", max_rows: int = 20) -> DataPeek:
    path = Path(path)
    name = str(path)
    if not path.exists():
        raise BadInput(Problem(name, key, "dataset file not found", "check data.path (relative paths are resolved "
                                                                     "against the recipe's folder, then the current one)"))
    if path.is_dir():
        raise BadInput(Problem(name, key, "is a folder", f"point {key} at a file ({', '.join(SUFFIXES)})"))
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise BadInput(Problem(name, key, f"unsupported dataset file type '{suffix}'",
                               f"use one of {', '.join(SUFFIXES)}"))
    if path.stat().st_size == 0:
        raise BadInput(Problem(name, key, "dataset file is empty", "add rows, or point at another file"))
    reader = {".jsonl": _jsonl, ".json": _json, ".csv": _csv, ".parquet": _parquet}[suffix]
    try:
        out = reader(path, key, max_rows)
    except UnicodeDecodeError as e:
        raise BadInput(Problem(name, key, f"is not UTF-8 text ({e.reason} at byte {e.start})",
                               "convert the file to UTF-8"))
    if out.num_rows == 0:
        raise BadInput(Problem(name, key, "dataset has no rows", "add rows, or point at another file"))
    return out


def _jsonl(path: Path, key: str, max_rows: int) -> DataPeek:
    columns: dict[str, None] = {}
    rows, n = [], 0
    complete = path.stat().st_size <= MAX_SCAN_BYTES
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise BadInput(Problem(str(path), key, f"line {lineno} is not valid JSON ({e.msg})",
                                       f"fix or delete line {lineno}", line=lineno))
            if not isinstance(obj, dict):
                raise BadInput(Problem(str(path), key, f"line {lineno} is a JSON {type(obj).__name__}, not an "
                                                       "object", "each line must be one {\"column\": value} object",
                                       line=lineno))
            n += 1
            for k in obj:
                columns.setdefault(k)
            if len(rows) < max_rows:
                rows.append(obj)
            if not complete and n >= 1000:
                break
    return DataPeek(path, "jsonl", list(columns), rows, n, complete)


def _json(path: Path, key: str, max_rows: int) -> DataPeek:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise BadInput(Problem(str(path), key, f"is not valid JSON ({e.msg} at line {e.lineno})",
                               "fix the file, or save it as JSONL (one object per line)", line=e.lineno))
    if isinstance(obj, dict) and len(obj) == 1 and isinstance(next(iter(obj.values())), list):
        obj = next(iter(obj.values()))  # {"data": [...]}
    if not isinstance(obj, list) or not all(isinstance(r, dict) for r in obj):
        raise BadInput(Problem(str(path), key, "JSON must be a list of objects (rows)",
                               "write [{\"column\": value}, ...] or use JSONL"))
    columns: dict[str, None] = {}
    for r in obj:
        for k in r:
            columns.setdefault(k)
    return DataPeek(path, "json", list(columns), obj[:max_rows], len(obj))


def _csv(path: Path, key: str, max_rows: int) -> DataPeek:
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        columns = list(reader.fieldnames or [])
        rows, n = [], 0
        for r in reader:
            n += 1
            if len(rows) < max_rows:
                rows.append(dict(r))
    return DataPeek(path, "csv", columns, rows, n)


def _parquet(path: Path, key: str, max_rows: int) -> DataPeek:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover
        return DataPeek(path, "parquet", [], [], 1, complete=False)
    try:
        f = pq.ParquetFile(path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise BadInput(Problem(str(path), key, f"is not a readable parquet file ({e})", "check the file"))
    table = f.read_row_group(0) if f.num_row_groups else None
    rows = table.slice(0, max_rows).to_pylist() if table is not None else []
    return DataPeek(path, "parquet", list(f.schema_arrow.names), rows, f.metadata.num_rows)
