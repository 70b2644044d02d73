"""The runs list's one-line system summary (SystemLine), and what it shares with the monitor's System tab
(widgets/system_panel.py): the app's one ``SystemSampler`` and the message a sample comes back in.

Both views sample through that sampler (workbench.core.system; its history is shared, so the tab's charts already
hold what the runs list sampled) in a thread worker, once a second, and only while they are on screen: the line
while its screen is the current one, the panel while its tab is shown and its screen is current. No psutil/pynvml
import here (the sampler imports them in its thread); this module stays small because the runs list loads it at
start.
"""
from __future__ import annotations

from textual import work
from textual.message import Message
from textual.widgets import Static

from workbench.core import system

SAMPLE_EVERY = 1.0  # seconds; the sampler never samples more often than once a second anyway


def sampler_of(app) -> system.SystemSampler:
    """The app's sampler, made on first use (an app without ``runs_dir`` samples the current folder's disk)."""
    sampler = getattr(app, "system_sampler", None)
    if sampler is None:
        sampler = app.system_sampler = system.SystemSampler(getattr(app, "runs_dir", "."))
    return sampler


class Sampled(Message):
    def __init__(self, sample: system.SystemSample, rows: list[system.RunGpuMemory] | None = None,
                 state: str | None = None):
        super().__init__()
        self.sample, self.rows, self.state = sample, rows, state  # rows, state: the panel's run


class SystemLine(Static):
    """'GPU 2/8 free · CPU 37% · RAM 41/126 GiB · disk 120 GiB free' (or 'no GPU (why) · ...'), one line, fitted
    to its width."""

    DEFAULT_CSS = """
    SystemLine { height: 1; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, **kwargs):
        super().__init__("", markup=False, **kwargs)
        self._busy = False
        self._last: system.SystemSample | None = None

    def on_mount(self) -> None:
        self.set_timer(0.3, self._tick)  # after the first frame: the first sample imports psutil
        self.set_interval(SAMPLE_EVERY, self._tick)

    def _tick(self) -> None:
        if not self._busy and self.app.screen is self.screen:  # nothing while a monitor or editor covers the list
            self._busy = True
            self._sample()

    @work(thread=True, group="system-line", exit_on_error=False)
    def _sample(self) -> None:
        try:
            self.post_message(Sampled(sampler_of(self.app).sample()))
        finally:
            self._busy = False

    def on_sampled(self, message: Sampled) -> None:
        message.stop()
        self._last = message.sample
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        if self._last is not None:
            text = system.status_line(self._last, max(20, self.content_size.width or 78))
            if text != str(self.render()):
                self.update(text, layout=False)
