"""The sampled-completions file (samples.jsonl) indexed by training step, without loading every row.

The trainer appends rows in step order, a batch of completions per logged step, each row starting with
``{"step": N, ...``. ``SampleIndex`` scans appended bytes for each line's step (a prefix read; a line in another
shape is parsed) and keeps, per step, the byte ranges of its lines. Rows are read and parsed only for the step
being viewed, so a file with 200,000 completions costs a few MB to browse.
"""
from __future__ import annotations

import bisect
import json
import time
from collections import OrderedDict

from workbench.core.metrics import JsonlTail

STEP_PREFIX = b'{"step": '
SCAN_CHUNK = 8 * 1024 * 1024


def line_step(line: bytes) -> int | None:
    if line.startswith(STEP_PREFIX):
        end = len(STEP_PREFIX)
        while end < len(line) and 48 <= line[end] <= 57:  # ASCII digits
            end += 1
        if end > len(STEP_PREFIX) and end < len(line) and line[end] in b",}":
            return int(line[len(STEP_PREFIX):end])
    try:
        row = json.loads(line)
    except ValueError:
        return None
    step = row.get("step") if isinstance(row, dict) else None
    return int(step) if isinstance(step, (int, float)) and not isinstance(step, bool) else None


class SampleIndex:
    """Per-step byte ranges of samples.jsonl, read incrementally; rows parsed on demand (a few steps cached)."""

    def __init__(self, path, cache_steps: int = 8):
        self.tail = JsonlTail(path)
        self.steps: list[int] = []  # sorted, unique
        self.ranges: dict[int, list[list[int]]] = {}  # step -> [[start, end), ...] (one range per contiguous run)
        self.counts: dict[int, int] = {}
        self._last: tuple[int, int] | None = None  # (step, end offset) of the newest line
        self._rows: OrderedDict[tuple[int, int], list[dict]] = OrderedDict()
        self._cache_steps = cache_steps

    @property
    def path(self):
        return self.tail.path

    def read_new(self, max_bytes: int = SCAN_CHUNK, budget_s: float = 0.3) -> bool:
        """Index appended lines, a chunk at a time for up to ``budget_s`` seconds; True when any arrived. Call
        again while ``behind`` to catch up on a big file. Only the chunk is in memory, never a copy per line."""
        got = False
        deadline = time.monotonic() + budget_s
        while True:
            resets = self.tail.resets
            raw = self.tail.read_raw(max_bytes)
            if self.tail.resets != resets:  # the file was replaced: start the index over
                self.steps, self.ranges, self.counts, self._last = [], {}, {}, None
                self._rows.clear()
            if raw is None:
                return got
            start, data = raw
            got = self._scan(start, data) or got
            if not self.tail.behind or time.monotonic() > deadline:
                return got

    def _scan(self, start: int, data: bytes) -> bool:
        got, pos, n, plen = False, 0, len(data), len(STEP_PREFIX)
        while pos < n:
            nl = data.find(b"\n", pos)
            if nl < 0:
                break
            step = None
            if data.startswith(STEP_PREFIX, pos):  # the trainer's rows: read the number in place
                end = pos + plen
                while end < nl and 48 <= data[end] <= 57:
                    end += 1
                if end > pos + plen and data[end:end + 1] in (b",", b"}"):
                    step = int(data[pos + plen:end])
            if step is None and nl > pos:
                step = line_step(data[pos:nl])
                if step is None:
                    if data[pos:nl].strip():
                        self.tail.bad_lines += 1
                    pos = nl + 1
                    continue
            if step is not None:
                self._add(step, start + pos, start + nl + 1)
                got = True
            pos = nl + 1
        self.tail.keep_partial(data[pos:])
        return got

    def _add(self, step: int, begin: int, end: int) -> None:
        if self._last == (step, begin):
            self.ranges[step][-1][1] = end
        elif step in self.ranges:
            self.ranges[step].append([begin, end])
        else:
            self.ranges[step] = [[begin, end]]
            if not self.steps or step > self.steps[-1]:
                self.steps.append(step)
            else:
                bisect.insort(self.steps, step)
        self.counts[step] = self.counts.get(step, 0) + 1
        self._last = (step, end)

    @property
    def behind(self) -> int:
        return self.tail.behind

    def __contains__(self, step) -> bool:
        return step in self.ranges

    def position(self, step: int) -> int:
        """Index of step in ``steps`` (step must be present)."""
        return bisect.bisect_left(self.steps, step)

    def rows(self, step: int) -> list[dict]:
        """The rows logged at step, in file order."""
        key = (step, self.counts.get(step, 0))
        if key in self._rows:
            self._rows.move_to_end(key)
            return self._rows[key]
        out: list[dict] = []
        try:
            with open(self.tail.path, "rb") as f:
                for start, end in self.ranges.get(step, []):
                    f.seek(start)
                    for line in f.read(end - start).split(b"\n"):
                        try:
                            row = json.loads(line) if line.strip() else None
                        except ValueError:
                            continue
                        if isinstance(row, dict):
                            out.append(row)
        except OSError:
            return []
        self._rows[key] = out
        while len(self._rows) > self._cache_steps:
            self._rows.popitem(last=False)
        return out
