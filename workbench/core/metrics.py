"""Incremental readers of metrics.jsonl and samples.jsonl.

``JsonlTail`` reads only what was appended since the last call, consumes complete lines only (a torn last line
waits for its newline), accepts NaN/Infinity tokens, skips garbage lines (counting them), and starts over when
the file is truncated or replaced. ``MetricsHistory`` folds rows into per-key series for charts and progress.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

READ_CHUNK = 8 * 1024 * 1024


class JsonlTail:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.offset = 0
        self.inode: int | None = None
        self.partial = b""
        self.bad_lines = 0
        self.resets = 0

    def read_new(self, max_bytes: int | None = None) -> list[dict]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return []
        if self.inode is not None and (st.st_ino != self.inode or st.st_size < self.offset):
            self.offset, self.partial = 0, b""  # truncated or replaced: start over
            self.resets += 1
        self.inode = st.st_ino
        if st.st_size == self.offset:
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(max_bytes or (st.st_size - self.offset))
        self.offset += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()  # b"" when data ended with a newline
        rows = []
        for line in lines:
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                self.bad_lines += 1
                continue
            if isinstance(obj, dict):
                rows.append(obj)
            else:
                self.bad_lines += 1
        return rows


def number(v) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


@dataclass
class MetricsHistory:
    """Per-key series (step, value) plus lifecycle facts, folded from metrics rows."""

    series: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    latest: dict[str, float] = field(default_factory=dict)
    step: int = 0
    max_steps: int | None = None
    begin_time: float | None = None
    begin_step: int = 0
    last_time: float | None = None
    ended: bool = False
    events: list[dict] = field(default_factory=list)

    SKIP = ("step", "time", "epoch", "event")

    def add(self, rows: list[dict]) -> None:
        for row in rows:
            event = row.get("event")
            if event:
                self.events.append(row)
                if event == "train_begin":
                    self.max_steps = row.get("max_steps") or self.max_steps
                    self.begin_time = row.get("time")
                    self.begin_step = int(row.get("step") or 0)
                elif event == "train_end":
                    self.ended = True
                elif event == "resume":  # rows past the checkpoint belong to the superseded attempt
                    self.truncate_after(int(row.get("step") or 0))
                if isinstance(row.get("step"), int):
                    self.step = max(self.step, row["step"])
                continue
            step = row.get("step")
            if not isinstance(step, (int, float)):
                continue
            self.step = max(self.step, int(step))
            self.last_time = row.get("time", self.last_time)
            for key, value in row.items():
                if key in self.SKIP:
                    continue
                v = number(value)
                if v is None:
                    continue
                xs, ys = self.series.setdefault(key, ([], []))
                xs.append(float(step))
                ys.append(v)
                self.latest[key] = v

    def truncate_after(self, step: int) -> None:
        for key, (xs, ys) in list(self.series.items()):
            keep = sum(1 for x in xs if x <= step)
            del xs[keep:], ys[keep:]
            if xs:
                self.latest[key] = ys[-1]
            else:
                del self.series[key]
                self.latest.pop(key, None)
        self.step = step
        self.ended = False

    def keys(self) -> list[str]:
        return sorted(self.series)

    def eta_seconds(self, now: float | None = None) -> float | None:
        if not self.max_steps or self.begin_time is None or self.step <= self.begin_step:
            return None
        now = now or time.time()
        rate = (now - self.begin_time) / (self.step - self.begin_step)
        return max(0.0, rate * (self.max_steps - self.step))


def read_history(path: str | os.PathLike) -> MetricsHistory:
    h = MetricsHistory()
    h.add(JsonlTail(path).read_new())
    return h
