"""Cheap per-run summaries and text formatting shared by the CLI (and the TUI's runs table).

``run_summary`` reads the head of metrics.jsonl (train_begin) and its last 64 KiB (latest values), never the
whole file, so listing hundreds of runs stays fast.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

from workbench.core import stages

# The headline metrics of a run whose stage the catalogue does not know (a known stage's are its declaration's
# ``headline``, core/stages.py: each one of these, in this order, that its trainer logs).
HEADLINE_KEYS = ("reward", "loss", "kl", "objective/kl", "rewards/accuracies", "accuracy")


def headline_keys(stage: str | None) -> tuple[str, ...]:
    """The metric keys the progress line (`workbench run`, `tail`) shows for a run of ``stage``."""
    return stages.headline_keys(stage, HEADLINE_KEYS)


TAIL_BYTES = 65536
LATEST_ROWS = 64  # metric rows read back from the end for the latest values
_cache: dict[str, tuple[tuple[int, int], dict]] = {}  # path -> ((size, mtime_ns), summary)


def _parse(line: bytes) -> dict | None:
    try:
        obj = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return obj if isinstance(obj, dict) else None


def _begin_max_steps(blob: bytes) -> int | None:
    """max_steps of the last train_begin event in blob (only that line is parsed)."""
    at = blob.rfind(b'"train_begin"')
    if at < 0:
        return None
    start = blob.rfind(b"\n", 0, at) + 1
    end = blob.find(b"\n", at)
    row = _parse(blob[start:end if end >= 0 else len(blob)])
    return row.get("max_steps") if row and row.get("event") == "train_begin" else None


def run_summary(metrics_path: Path) -> dict:
    """{"step", "max_steps", "latest": {key: value}} from the file's head and tail; remembered per file until
    the file changes (a refreshing runs list costs one stat per finished run)."""
    out: dict = {"step": 0, "max_steps": None, "latest": {}}
    try:
        st = os.stat(metrics_path)
        key = str(metrics_path)
        hit = _cache.get(key)
        if hit and hit[0] == (st.st_size, st.st_mtime_ns):
            return dict(hit[1], latest=dict(hit[1]["latest"]))
        with open(metrics_path, "rb") as f:
            head = f.read(4096)
            f.seek(max(0, st.st_size - TAIL_BYTES))
            tail = f.read()
    except FileNotFoundError:
        return out
    out["max_steps"] = _begin_max_steps(tail) or _begin_max_steps(head)
    lines = tail.split(b"\n")
    if st.st_size > TAIL_BYTES:
        lines.pop(0)  # the partial line the tail starts in
    seen = 0
    for line in reversed(lines):
        if seen >= LATEST_ROWS:
            break
        row = _parse(line) if line.strip() else None
        if row is None:
            continue
        if isinstance(row.get("step"), int):
            out["step"] = max(out["step"], row["step"])
        if row.get("event"):
            continue
        seen += 1
        for k, v in row.items():
            if k in ("step", "time", "epoch") or k in out["latest"]:
                continue
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                out["latest"][k] = v
    if len(_cache) > 4096:
        _cache.clear()
    _cache[key] = ((st.st_size, st.st_mtime_ns), dict(out, latest=dict(out["latest"])))
    return out


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def fmt_time(ts: float | None) -> str:
    if not ts:
        return "-"
    t = time.localtime(ts)
    return time.strftime("%m-%d %H:%M" if time.time() - ts > 86400 else "%H:%M:%S", t)


def fmt_num(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, int):
        return str(v)
    a = abs(v)
    if a != 0 and (a < 1e-3 or a >= 1e5):
        return f"{v:.2e}"
    return f"{v:.4g}"


def fmt_pct(v) -> str:
    """A rate in [0, 1] as a whole percentage ("70%"); "-" when missing."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return "-"
    return f"{v:.0%}"


def duration_of(status: dict) -> float | None:
    """Seconds the run has run (or ran); None for a run never started (prepared, or waiting in the queue: no
    clock)."""
    start = status.get("started") or (status.get("created") if status.get("state") not in ("prepared", "waiting")
                                       else None)
    if not start:
        return None
    return (status.get("ended") or time.time()) - start


def progress_bar(step: int, max_steps: int | None, width: int = 24) -> str:
    if not max_steps or max_steps <= 0:
        return f"step {step}"
    frac = min(1.0, step / max_steps)
    filled = int(frac * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {step}/{max_steps} {frac:4.0%}"
