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

HEADLINE_KEYS = ("reward", "loss", "kl", "objective/kl", "rewards/accuracies", "accuracy")


def _rows(blob: bytes) -> list[dict]:
    out = []
    for line in blob.split(b"\n"):
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out


def run_summary(metrics_path: Path) -> dict:
    """{"step", "max_steps", "latest": {key: value}} from the file's head and tail."""
    out: dict = {"step": 0, "max_steps": None, "latest": {}}
    try:
        size = os.path.getsize(metrics_path)
        with open(metrics_path, "rb") as f:
            head = f.read(4096)
            f.seek(max(0, size - 65536))
            tail = f.read()
    except FileNotFoundError:
        return out
    for row in _rows(head) + _rows(tail):
        if row.get("event") == "train_begin" and row.get("max_steps"):
            out["max_steps"] = row["max_steps"]
    for row in reversed(_rows(tail)):
        if isinstance(row.get("step"), int):
            out["step"] = max(out["step"], row["step"])
        if row.get("event"):
            continue
        for k, v in row.items():
            if k in ("step", "time", "epoch") or k in out["latest"]:
                continue
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                out["latest"][k] = v
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


def duration_of(status: dict) -> float | None:
    start = status.get("started") or status.get("created")
    if not start:
        return None
    return (status.get("ended") or time.time()) - start


def progress_bar(step: int, max_steps: int | None, width: int = 24) -> str:
    if not max_steps or max_steps <= 0:
        return f"step {step}"
    frac = min(1.0, step / max_steps)
    filled = int(frac * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {step}/{max_steps} {frac:4.0%}"
