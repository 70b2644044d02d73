"""Incremental readers of metrics.jsonl, bounded per-metric summaries, and the saved view of a big run.

``JsonlTail`` reads only what was appended since the last call, consumes complete lines only (a torn last line
waits for its newline), accepts NaN/Infinity tokens, skips garbage lines (counting them), and starts over when
the file is truncated or replaced.

``MetricsHistory`` folds rows into one ``Series`` per key. A Series is bounded: at most ``Series.CAP`` buckets,
each holding the min and the max (and where they occurred) of ``size`` consecutive points; when the buckets fill
up, neighbours merge and ``size`` doubles. So a run of 100 steps keeps every point exactly, and a run of
1,000,000 steps x 50 keys costs a few MB and still charts every spike (min/max per bucket, then per column).

Opening a big run: ``overview`` reads a few thousand rows at evenly spaced offsets (plus the head and the tail)
so charts can show at once, while the exact fold catches up in the background; ``save_view``/``load_view`` keep
the folded state in the workbench cache so the next open of the same file starts where the last one stopped.
"""
from __future__ import annotations

import base64
import bisect
import hashlib
import json
import math
import os
import threading
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path

READ_CHUNK = 8 * 1024 * 1024
VIEW_VERSION = 1
MAX_VIEWS = 64  # saved views kept (the most recently saved); each is a few MB at most


class JsonlTail:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.offset = 0
        self.inode: int | None = None
        self.partial = b""
        self.bad_lines = 0
        self.resets = 0
        self.size = 0  # the file's size at the last read

    def _read(self, max_bytes: int | None) -> bytes | None:
        """Appended bytes (after the kept partial line), or None when there is nothing new."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        if self.inode is not None and (st.st_ino != self.inode or st.st_size < self.offset):
            self.offset, self.partial = 0, b""  # truncated or replaced: start over
            self.resets += 1
        self.inode = st.st_ino
        self.size = st.st_size
        if st.st_size == self.offset:
            return None
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(max_bytes or (st.st_size - self.offset))
        self.offset += len(data)
        return data

    @property
    def behind(self) -> int:
        """Bytes known to be in the file and not read yet."""
        return max(0, self.size - self.offset)

    def read_new(self, max_bytes: int | None = None) -> list[dict]:
        data = self._read(max_bytes)
        if data is None:
            return []
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()  # b"" when data ended with a newline
        return self._parse(lines)

    def read_raw(self, max_bytes: int | None = None) -> tuple[int, bytes] | None:
        """New bytes for an index: (file offset of data[0], data) where data starts with the kept partial line.
        The caller consumes the complete lines and hands the rest back with ``keep_partial``."""
        data = self._read(max_bytes)
        if data is None:
            return None
        start = self.offset - len(data) - len(self.partial)
        return start, self.partial + data

    def keep_partial(self, rest: bytes) -> None:
        self.partial = rest

    def _parse(self, lines: list[bytes]) -> list[dict]:
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


def last_row_with(path: str | os.PathLike, key: str, chunk: int = 256 * 1024, max_bytes: int = 64 * 1024 * 1024):
    """The last complete row of a JSONL file that has ``key`` (read backwards from the end, chunk by chunk, at most
    ``max_bytes``); None when there is none or the file cannot be read."""
    try:
        f = open(path, "rb")
    except OSError:
        return None
    needle = json.dumps(key).encode()
    with f:
        end = f.seek(0, os.SEEK_END)
        pos, carry = end, b""
        while pos > 0 and end - pos < max_bytes:
            start = max(0, pos - chunk)
            f.seek(start)
            data = f.read(pos - start) + carry
            pos = start
            lines = data.split(b"\n")
            carry = lines.pop(0) if pos > 0 else b""  # maybe a partial line: joined with the next chunk back
            for line in reversed(lines):
                if needle in line:
                    try:
                        row = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(row, dict) and key in row:
                        return row
        if carry and needle in carry:
            try:
                row = json.loads(carry)
                return row if isinstance(row, dict) and key in row else None
            except ValueError:
                return None
    return None


def number(v) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


class Series:
    """One metric's points, summarised into at most CAP min/max buckets of ``size`` consecutive points each."""

    CAP = 1024  # even; a chart column needs ~2 points, so this covers any terminal width with room to spare
    FIELDS = ("x0", "x1", "lo", "hi", "xlo", "xhi")

    def __init__(self):
        self.x0, self.x1, self.lo, self.hi, self.xlo, self.xhi = (array("d") for _ in self.FIELDS)
        self.size = 1  # points per full bucket
        self.fill = 0  # points in the last bucket
        self.count = 0  # points folded in (ever; a truncation leaves it approximate)
        self.version = 0  # bumps on every change: a chart's cache key

    def __len__(self) -> int:
        return self.count

    @property
    def exact(self) -> bool:
        """Every point is kept as it was (no bucket has merged two points yet)."""
        return self.size == 1

    def _open(self, x: float, y: float) -> None:
        if len(self.x0) == self.CAP:
            self._halve()
        for arr, v in zip((self.x0, self.x1, self.lo, self.hi, self.xlo, self.xhi), (x, x, y, y, x, x)):
            arr.append(v)
        self.fill = 1

    def _halve(self) -> None:
        x0, x1, lo, hi, xlo, xhi = self.x0, self.x1, self.lo, self.hi, self.xlo, self.xhi
        n = len(x0) - len(x0) % 2
        nlo, nxlo, nhi, nxhi = array("d"), array("d"), array("d"), array("d")
        for i in range(0, n, 2):
            a, b = (i, i + 1) if lo[i] <= lo[i + 1] else (i + 1, i)
            nlo.append(lo[a]), nxlo.append(xlo[a])
            a = i if hi[i] >= hi[i + 1] else i + 1
            nhi.append(hi[a]), nxhi.append(xhi[a])
        rest = slice(n, len(x0))  # an odd bucket out (only after a truncation) stays as it is
        self.x0 = array("d", x0[0:n:2]) + x0[rest]
        self.x1 = array("d", x1[1:n:2]) + x1[rest]
        self.lo, self.xlo = nlo + lo[rest], nxlo + xlo[rest]
        self.hi, self.xhi = nhi + hi[rest], nxhi + xhi[rest]
        self.size *= 2

    def add(self, x: float, y: float) -> None:
        self.extend([x], [y])

    def extend(self, xs: list[float], ys: list[float]) -> None:
        """Fold points in (x ascending); ys must be finite floats."""
        i, n = 0, len(ys)
        while i < n:
            if self.fill and self.fill < self.size:
                take = min(self.size - self.fill, n - i)
                seg = ys[i:i + take]
                m, big = min(seg), max(seg)
                if m < self.lo[-1]:
                    self.lo[-1], self.xlo[-1] = m, xs[i + seg.index(m)]
                if big > self.hi[-1]:
                    self.hi[-1], self.xhi[-1] = big, xs[i + seg.index(big)]
                self.x1[-1] = xs[i + take - 1]
                self.fill += take
                i += take
            else:
                self._open(xs[i], ys[i])
                i += 1
        self.count += n
        self.version += 1

    def truncate_after(self, x: float) -> None:
        """Forget points past x. Exact while every point is kept; at bucket granularity after merging."""
        keep = bisect.bisect_right(self.x0, x)
        for arr in (self.x0, self.x1, self.lo, self.hi, self.xlo, self.xhi):
            del arr[keep:]
        if keep and self.x1[-1] > x:  # a merged bucket straddles x: clip it, its extremes stay approximate
            self.x1[-1] = x
            self.xlo[-1], self.xhi[-1] = min(self.xlo[-1], x), min(self.xhi[-1], x)
        self.fill = self.size if keep else 0  # the next point opens a new bucket
        self.count = min(self.count, keep * self.size)
        self.version += 1

    @property
    def last(self) -> float | None:
        """The y of the newest point (exact while unmerged; otherwise the newest bucket's extreme nearest x1)."""
        if not self.x0:
            return None
        return self.lo[-1] if self.xlo[-1] >= self.xhi[-1] else self.hi[-1]

    def points(self) -> tuple[list[float], list[float]]:
        """Each bucket's min and max in x order (one point when they coincide): at most 2*CAP points."""
        xs: list[float] = []
        ys: list[float] = []
        for xl, yl, xh, yh in zip(self.xlo, self.lo, self.xhi, self.hi):
            if xl == xh:
                xs.append(xl), ys.append(yl)
            elif xl < xh:
                xs += (xl, xh)
                ys += (yl, yh)
            else:
                xs += (xh, xl)
                ys += (yh, yl)
        return xs, ys

    def state(self) -> dict:
        return {"size": self.size, "fill": self.fill, "count": self.count,
                "data": base64.b64encode(b"".join(getattr(self, f).tobytes() for f in self.FIELDS)).decode()}

    @classmethod
    def from_state(cls, d: dict) -> Series:
        s = cls()
        raw = array("d")
        raw.frombytes(base64.b64decode(d["data"]))
        n = len(raw) // len(cls.FIELDS)
        for k, f in enumerate(cls.FIELDS):
            setattr(s, f, raw[k * n:(k + 1) * n])
        s.size, s.fill, s.count = int(d["size"]), int(d["fill"]), int(d["count"])
        return s


def _step_of(row: dict) -> float | None:
    step = row.get("step")
    return None if isinstance(step, bool) or not isinstance(step, (int, float)) else float(step)


@dataclass
class MetricsHistory:
    """Per-key bounded series plus lifecycle facts, folded from metrics rows."""

    series: dict[str, Series] = field(default_factory=dict)
    latest: dict[str, float] = field(default_factory=dict)
    step: int = 0
    max_steps: int | None = None
    begin_time: float | None = None
    begin_step: int = 0
    last_time: float | None = None
    ended: bool = False
    events: list[dict] = field(default_factory=list)
    rows: int = 0  # metric rows folded in
    # A reader thread folds while the UI thread draws: hold the lock for either.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    SKIP = frozenset(("step", "time", "epoch", "event"))
    MAX_EVENTS = 10_000

    def add(self, rows: list[dict]) -> None:
        seg: list[dict] = []
        for row in rows:
            if row.get("event"):
                self._fold(seg)
                seg = []
                self._event(row)
            else:
                seg.append(row)
        self._fold(seg)

    def _event(self, row: dict) -> None:
        event = row["event"]
        if len(self.events) < self.MAX_EVENTS:
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

    def _fold(self, rows: list[dict]) -> None:
        """Column by column: one pass per key with builtins doing the per-value work (a big file folds fast)."""
        pairs = [(x, r) for r in rows if (x := _step_of(r)) is not None]
        if not pairs:
            return
        xs_all = [x for x, _ in pairs]
        rows = [r for _, r in pairs]
        keys: set[str] = set()
        for r in rows:
            keys.update(r)
        keys -= self.SKIP
        for key in keys:
            col = [r.get(key) for r in rows]
            if all(type(v) is float for v in col) and math.isfinite(sum(col)):
                xs, ys = xs_all, col  # the common case: every row has a finite float
            else:
                kept = [(x, y) for x, v in zip(xs_all, col) if (y := number(v)) is not None]
                if not kept:
                    continue
                xs, ys = [x for x, _ in kept], [y for _, y in kept]
            s = self.series.get(key)
            if s is None:
                s = self.series[key] = Series()
            s.extend(xs, ys)
            self.latest[key] = ys[-1]
        self.step = max(self.step, int(max(xs_all)))
        self.last_time = rows[-1].get("time", self.last_time)
        self.rows += len(rows)

    def truncate_after(self, step: int) -> None:
        for key, s in list(self.series.items()):
            s.truncate_after(step)
            if s.x0:
                self.latest[key] = s.last
            else:
                del self.series[key]
                self.latest.pop(key, None)
        self.step = step
        self.ended = False

    def keys(self) -> list[str]:
        return sorted(self.series)

    def points(self, key: str) -> tuple[list[float], list[float]]:
        s = self.series.get(key)
        return s.points() if s else ([], [])

    def eta_seconds(self, now: float | None = None) -> float | None:
        if not self.max_steps or self.begin_time is None or self.step <= self.begin_step:
            return None
        now = now or time.time()
        rate = (now - self.begin_time) / (self.step - self.begin_step)
        return max(0.0, rate * (self.max_steps - self.step))

    # -- persistence (the saved view of a big run) -----------------------------------------------------------
    SCALARS = ("latest", "step", "max_steps", "begin_time", "begin_step", "last_time", "ended", "rows")

    def state(self) -> dict:
        d = {k: getattr(self, k) for k in self.SCALARS}
        d["events"] = self.events[-1000:]
        d["series"] = {k: s.state() for k, s in self.series.items()}
        return d

    @classmethod
    def from_state(cls, d: dict) -> MetricsHistory:
        h = cls(**{k: d[k] for k in cls.SCALARS})
        h.events = list(d.get("events", []))
        h.series = {k: Series.from_state(v) for k, v in d["series"].items()}
        return h


def read_history(path: str | os.PathLike) -> MetricsHistory:
    h = MetricsHistory()
    tail = JsonlTail(path)
    while rows := tail.read_new(max_bytes=READ_CHUNK):
        h.add(rows)
    return h


# -- opening a big run ---------------------------------------------------------------------------------------
def overview(path: str | os.PathLike, samples: int = 1024, edge: int = 128 * 1024) -> tuple[MetricsHistory, int]:
    """A quick approximate history of a big file: all rows of its first and last ``edge`` bytes and ``samples``
    rows at evenly spaced offsets between them. Returns it with the file size it saw."""
    rows, size = overview_rows(path, samples, edge)
    h = MetricsHistory()
    h.add(rows)
    return h, size


def overview_rows(path: str | os.PathLike, samples: int = 1024, edge: int = 128 * 1024) -> tuple[list[dict], int]:
    """The rows ``overview`` folds (in step order), with the file size it saw."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(min(edge, size))
        rows = _complete(head, first=True)
        lo, hi = len(head), max(len(head), size - edge)
        if hi > lo:
            stride = (hi - lo) / samples
            for k in range(samples):
                f.seek(int(lo + k * stride))
                f.readline()  # the rest of the line the offset fell into
                line = f.readline()
                if line.endswith(b"\n"):
                    rows += _complete(line, first=True)
        f.seek(hi)
        rows += _complete(f.read(size - hi), first=hi == 0)
    rows.sort(key=lambda r: (_step_of(r) or 0.0, 0 if r.get("event") else 1))  # overlap of head/samples/tail
    return rows, size


def _complete(data: bytes, first: bool) -> list[dict]:
    """Rows of the whole lines in data (drops a leading partial line unless data starts the file)."""
    lines = data.split(b"\n")
    lines.pop()  # after the last newline: partial (or empty)
    if not first and lines:
        lines.pop(0)
    out = []
    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out


def _view_file(metrics_path: Path) -> Path:
    from workbench.core.paths import cache_dir

    key = hashlib.sha1(str(Path(metrics_path).resolve()).encode()).hexdigest()[:20]
    return cache_dir() / "views" / f"{key}.json"


def _fingerprint(path: Path, offset: int) -> str:
    """Of the file's first and last 4 KB up to offset: a rewritten file with the same inode does not match."""
    with open(path, "rb") as f:
        head = f.read(min(offset, 4096))
        f.seek(max(0, offset - 4096))
        return hashlib.sha1(head + f.read(min(offset, 4096))).hexdigest()


def save_view(tail: JsonlTail, history: MetricsHistory) -> bool:
    """Keep the folded state of tail's file so reopening it reads only what came after. Best effort."""
    from workbench.core.atomic import write_text_atomic

    if tail.partial or tail.inode is None:
        return False
    try:
        state = {"version": VIEW_VERSION, "path": str(tail.path.resolve()), "inode": tail.inode,
                 "offset": tail.offset, "fingerprint": _fingerprint(tail.path, tail.offset),
                 "bad_lines": tail.bad_lines, "history": history.state()}
        out = _view_file(tail.path)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out, json.dumps(state, allow_nan=False), mode=0o600)
        _prune_views(out.parent)
        return True
    except (OSError, ValueError):
        return False


def _prune_views(folder: Path, keep: int = MAX_VIEWS) -> None:
    views = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in views[keep:]:
        old.unlink(missing_ok=True)


def load_view(tail: JsonlTail) -> MetricsHistory | None:
    """The saved state of tail's file if it still describes the file's beginning; positions tail after it."""
    try:
        state = json.loads(_view_file(tail.path).read_text(encoding="utf-8"))
        st = os.stat(tail.path)
        if (state.get("version") != VIEW_VERSION or state["inode"] != st.st_ino or state["offset"] > st.st_size
                or state["fingerprint"] != _fingerprint(tail.path, state["offset"])):
            return None
        history = MetricsHistory.from_state(state["history"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    tail.offset, tail.inode, tail.partial, tail.size = state["offset"], st.st_ino, b"", st.st_size
    tail.bad_lines = int(state.get("bad_lines", 0))
    return history
