"""The sampled-completions file (samples.jsonl) indexed by training step, without loading every row.

The trainer appends rows in step order, a batch of completions per logged step, each row starting with
``{"step": N, ...``. ``SampleIndex`` scans appended bytes for each line's step (a prefix read; a line in another
shape is parsed) and keeps, per step, the byte ranges of its lines. Rows are read and parsed only for the step
being viewed, so a file with 200,000 completions costs a few MB to browse.

A row's prompt is shown as the user reads it (``prompt_parts``, ``chat_line``): a chat prompt, whichever of its
stored forms, as "system: … / user: …"; the TUI's Samples tab and `workbench show` both use it.
"""
from __future__ import annotations

import bisect
import json
import os
import re
import time
from collections import OrderedDict

from workbench.core.metrics import JsonlTail

STEP_PREFIX = b'{"step": '
SCAN_CHUNK = 4 * 1024 * 1024
TAIL_FIRST = 2 * 1024 * 1024  # a bigger file is indexed from this far before its end first


def prefix_step(buf: bytes, pos: int = 0, end: int | None = None) -> int | None:
    """The step of a line written the trainer's way (``{"step": N, ...``) that starts at buf[pos] and ends before
    buf[end], read in place (no copy of the line); None for a line in another shape."""
    end = len(buf) if end is None else end
    if not buf.startswith(STEP_PREFIX, pos):
        return None
    start = i = pos + len(STEP_PREFIX)
    while i < end and 48 <= buf[i] <= 57:  # ASCII digits
        i += 1
    return int(buf[start:i]) if i > start and i < end and buf[i] in b",}" else None


def line_step(line: bytes) -> int | None:
    """The step of one samples.jsonl line: the prefix when it has the trainer's shape, else the parsed row's."""
    step = prefix_step(line)
    if step is not None:
        return step
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
        self._last: tuple | None = None  # (step, end offset, range) of the newest line read at the end
        self._last_gap: tuple | None = None  # the same for the older part of a file indexed newest first
        self._gap: tuple[int, int] | None = None  # (from, to) byte range not indexed yet (older than the tail)
        self._rows: OrderedDict[tuple[int, int], list[dict]] = OrderedDict()
        self._cache_steps = cache_steps

    @property
    def path(self):
        return self.tail.path

    def read_new(self, max_bytes: int = SCAN_CHUNK, budget_s: float = 0.3) -> bool:
        """Index appended lines, a chunk at a time for up to ``budget_s`` seconds; True when any arrived. Call
        again while ``behind`` to catch up on a big file. Only the chunk is in memory, never a copy per line.

        A big file is indexed newest first: its last TAIL_FIRST bytes, then (in later calls, within the time
        budget) the older part from the start, so the viewer can show the newest step at once."""
        got = False
        deadline = time.monotonic() + budget_s
        chunk = max_bytes
        if self.tail.inode is None and self._start_tail_first():
            chunk = max(max_bytes, self.tail.behind)  # the newest TAIL_FIRST bytes in one go
        while True:
            resets = self.tail.resets
            raw = self.tail.read_raw(chunk)
            chunk = max_bytes
            if self.tail.resets != resets:  # the file was replaced: start the index over
                self.steps, self.ranges, self.counts = [], {}, {}
                self._last = self._last_gap = self._gap = None
                self._rows.clear()
            if raw is None:
                break
            start, data = raw
            found, used = self._scan(start, data, "_last")
            self.tail.keep_partial(data[used:])
            got = got or found
            if not self.tail.behind or time.monotonic() > deadline:
                return got
        while self._gap and time.monotonic() <= deadline:  # the older part of a file indexed newest first
            lo, hi = self._gap
            try:
                with open(self.tail.path, "rb") as f:
                    f.seek(lo)
                    data = f.read(min(max_bytes, hi - lo))
            except OSError:
                self._gap = None
                break
            found, used = self._scan(lo, data, "_last_gap")
            got = got or found
            if used == 0:  # a line longer than the chunk: take it whole next time
                used = len(data) if lo + len(data) >= hi else 0
                max_bytes *= 2
            lo += used
            self._gap = (lo, hi) if lo < hi else None
        return got

    def _start_tail_first(self) -> bool:
        try:
            st = os.stat(self.tail.path)
        except OSError:
            return False
        if st.st_size <= TAIL_FIRST:
            return False
        with open(self.tail.path, "rb") as f:
            f.seek(st.st_size - TAIL_FIRST)
            f.readline()  # to the next line start
            begin = f.tell()
        if begin >= st.st_size:
            return False
        self.tail.offset, self.tail.inode, self.tail.size = begin, st.st_ino, st.st_size
        self._gap = (0, begin)
        return True

    def _scan(self, start: int, data: bytes, last: str) -> tuple[bool, int]:
        """Index the complete lines of data (which starts at file offset start): (any found, bytes consumed).
        ``last`` names the attribute that remembers this stream's previous line, to grow contiguous ranges."""
        got, pos, n = False, 0, len(data)
        while pos < n:
            nl = data.find(b"\n", pos)
            if nl < 0:
                break
            step = prefix_step(data, pos, nl)  # the trainer's rows: the number read in place
            if step is None and nl > pos:
                step = line_step(data[pos:nl])
                if step is None and data[pos:nl].strip():
                    self.tail.bad_lines += 1
            if step is not None:
                self._add(step, start + pos, start + nl + 1, last)
                got = True
            pos = nl + 1
        return got, pos

    def _add(self, step: int, begin: int, end: int, last: str) -> None:
        prev = getattr(self, last)  # (step, end offset, its range) of the previous line of this stream
        if prev is not None and prev[0] == step and prev[1] == begin:
            rng = prev[2]
            rng[1] = end
        else:
            rng = [begin, end]
            if step in self.ranges:
                self.ranges[step].append(rng)
                self.ranges[step].sort()
            else:
                self.ranges[step] = [rng]
                self.counts[step] = 0
                if not self.steps or step > self.steps[-1]:
                    self.steps.append(step)
                else:
                    bisect.insort(self.steps, step)
        self.counts[step] += 1
        setattr(self, last, (step, end, rng))

    @property
    def behind(self) -> int:
        """Bytes not indexed yet: appended ones, plus the older part of a file indexed newest first."""
        return self.tail.behind + (self._gap[1] - self._gap[0] if self._gap else 0)

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


# -- prompts as the user reads them ----------------------------------------------------------------------------
CHATML_RE = re.compile(r"<\|im_start\|>([^\n<]*)\n(.*?)(?:<\|im_end\|>|$)", re.DOTALL)


def prompt_messages(prompt) -> list[dict] | None:
    """A conversational prompt as its messages (``[{"role": ..., "content": ...}, ...]``), whether the row holds
    the list, the list as JSON text (best-of-k and the sample logger store a chat prompt that way) or the text a
    ChatML chat template made of it (trl's GRPO/RLOO log that; the empty assistant turn it ends with is dropped);
    None for a plain-text prompt."""
    value = prompt
    if isinstance(prompt, str) and prompt.lstrip().startswith("[{"):
        try:
            value = json.loads(prompt)
        except ValueError:
            return None
    elif isinstance(prompt, str) and "<|im_start|>" in prompt:
        value = [{"role": m.group(1).strip(), "content": m.group(2).strip()} for m in CHATML_RE.finditer(prompt)]
        while value and value[-1]["role"] == "assistant" and not value[-1]["content"]:
            value.pop()
    if isinstance(value, list) and value and all(isinstance(m, dict) and "content" in m for m in value):
        return value
    return None


def _content(value) -> str:
    """A message's content as text; multimodal parts ([{"type": "text", "text": ...}]) give their text."""
    if isinstance(value, list):
        return " ".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in value)
    return "" if value is None else str(value)


def prompt_parts(prompt, part_chars: int = 60) -> list[tuple[str, str]]:
    """(role, text) per message of a chat prompt, every message but the last cut to ``part_chars`` (a long system
    prompt repeats for every prompt); a plain-text prompt is one part with the role "". Whitespace runs become one
    space, so each part fits on a line."""
    messages = prompt_messages(prompt)
    if messages is None:
        return [("", " ".join(_content(prompt).split()))]
    out = []
    for i, m in enumerate(messages):
        text = " ".join(_content(m.get("content")).split())
        if i < len(messages) - 1 and len(text) > part_chars:
            text = text[: part_chars - 1] + "…"
        out.append((str(m.get("role") or "?"), text))
    return out


def chat_line(prompt, width: int = 160) -> str:
    """A prompt on one line: "system: … / user: …" for a chat prompt of several messages, the text of a plain
    prompt or of a lone message; at most ``width`` characters, cut at the front (the question is at the end)."""
    parts = prompt_parts(prompt)
    text = parts[0][1] if len(parts) == 1 else " / ".join(f"{role}: {text}" for role, text in parts)
    return text if len(text) <= width else "…" + text[-(width - 1):]
