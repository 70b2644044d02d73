"""Plain text of what an app shows (the composed screen, modals included), for assertions and debugging."""
from __future__ import annotations


def screen_text(app) -> str:
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strip).rstrip() for strip in strips)


def notices(app) -> list[str]:
    """The messages of the notifications (toasts) currently shown."""
    return [n.message for n in app._notifications]
