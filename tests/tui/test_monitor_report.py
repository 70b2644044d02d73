"""The monitor writes a report of its run (key R, or the command palette) to RUN_DIR/report/ without blocking."""
from __future__ import annotations

import asyncio
from html.parser import HTMLParser

from tests.tui.conftest import make_run
from tests.tui.screen_text import notices
from tests.tui.test_monitor_screen import SIZE, open_monitor


async def wait_for(pilot, cond, timeout: float = 60.0) -> bool:
    for _ in range(int(timeout / 0.1)):
        if cond():
            return True
        await asyncio.sleep(0.1)  # the report is written in a thread: the app is idle meanwhile
    return cond()


class Images(HTMLParser):
    def __init__(self, text: str):
        super().__init__()
        self.srcs: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.srcs.append(dict(attrs)["src"])


async def test_key_r_writes_the_report_and_notifies_its_path(runs_dir, app_factory):
    d = make_run(runs_dir, "20260101-000000-rep", steps=6, max_steps=6)
    index = d / "report" / "index.html"
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_monitor(app, pilot, d)
        await pilot.press("R")
        assert await wait_for(pilot, lambda: any(f"report written: {index}" in n for n in notices(app)))
        assert app.screen is screen  # still watching the run
    srcs = Images(index.read_text(encoding="utf-8")).srcs
    assert "charts/reward.png" in srcs
    assert all((d / "report" / s).read_bytes().startswith(b"\x89PNG") for s in srcs)


async def test_palette_offers_the_report(runs_dir, app_factory):
    d = make_run(runs_dir, "20260101-000000-pal", steps=3, max_steps=3)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_monitor(app, pilot, d)
        commands = {name: callback for name, callback, _ in screen.palette_commands()}
        assert "Write a report of this run" in commands
        commands["Write a report of this run"]()
        assert await wait_for(pilot, lambda: any("report written:" in n for n in notices(app)))
    assert (d / "report" / "index.html").is_file()
