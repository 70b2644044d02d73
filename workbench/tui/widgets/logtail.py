"""Incremental tail of a run's stdout.log for the log pane (UI-free; a thread worker calls it).

Reads only appended bytes; starts at most ``START_BYTES`` from the end of a big file; keeps the last segment of
carriage-return progress bars (tqdm) so a bar shows as one line, not hundreds.
"""
from __future__ import annotations

import os
from pathlib import Path

START_BYTES = 256 * 1024


class TextTail:
    def __init__(self, path):
        self.path = Path(path)
        self.offset: int | None = None
        self.partial = ""

    def read_new(self) -> list[str]:
        try:
            size = os.path.getsize(self.path)
        except OSError:
            return []
        if self.offset is None:
            self.offset = max(0, size - START_BYTES)
        if size < self.offset:  # truncated: start over
            self.offset, self.partial = 0, ""
        if size == self.offset:
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(size - self.offset)
        self.offset += len(data)
        text = self.partial + data.decode("utf-8", errors="replace")
        lines = text.split("\n")
        self.partial = lines.pop()
        return [line.rstrip("\r").rsplit("\r", 1)[-1] for line in lines]
