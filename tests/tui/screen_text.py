"""Plain text of what an app shows (the composed screen, modals included), for assertions and debugging."""
from __future__ import annotations

import time


def screen_text(app) -> str:
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strip).rstrip() for strip in strips)


def notices(app) -> list[str]:
    """The messages of the notifications (toasts) currently shown."""
    return [n.message for n in app._notifications]


async def wait_for(pilot, cond, what: str = "the change", timeout: float = 10.0) -> None:
    """Wait until cond() holds, looking every 50 ms for up to timeout seconds of wall time (not a count of pauses, which
    stretch on a loaded machine); fails naming what it waited for, with the screen."""
    deadline = time.monotonic() + timeout
    while True:
        await pilot.pause(0.05)
        if cond():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}:\n{screen_text(pilot.app)}")
