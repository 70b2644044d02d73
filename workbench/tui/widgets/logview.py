"""The monitor's log pane: the last lines of the run's stdout.log (fed by widgets/logtail.TextTail), wrapped to the
pane's width so a long line (a traceback, a trl warning) is read whole; w turns wrapping off, and then left /
right scroll the pane sideways (when it has the focus; the tabs switch with 1-5). Lines are shown literally, never
as markup. The raw lines are kept (at most ``max_lines``) so a width change or w lays them out again.
"""
from __future__ import annotations

from collections import deque

from rich.text import Text
from textual.binding import Binding
from textual.widgets import RichLog


class LogView(RichLog):
    BINDINGS = [Binding("w", "toggle_wrap", "Wrap on/off")]

    def __init__(self, max_lines: int, **kwargs):
        super().__init__(max_lines=max_lines, wrap=True, markup=False, highlight=False, min_width=1, **kwargs)
        self.raw: deque[str] = deque(maxlen=max_lines)
        self._laid_out_at = 0  # the width the lines were wrapped to

    def add_lines(self, lines: list[str]) -> None:
        self.raw.extend(lines)
        for line in lines:
            self._write(line)

    def _write(self, line: str) -> None:
        self.write(Text(line, no_wrap=not self.wrap), shrink=self.wrap)  # unwrapped: as wide as the line

    def action_toggle_wrap(self) -> None:
        self.wrap = not self.wrap
        self.relayout()
        self.notify("log lines wrapped" if self.wrap else "log lines unwrapped: left / right scroll sideways",
                    timeout=3)

    def relayout(self) -> None:
        self._laid_out_at = self.scrollable_content_region.width
        self.clear()
        for line in self.raw:
            self._write(line)
        self.scroll_end(animate=False, immediate=True, x_axis=False)

    def on_resize(self) -> None:
        if self.wrap and self.raw and self.scrollable_content_region.width != self._laid_out_at:
            self.relayout()
