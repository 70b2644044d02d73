"""Child process of bench_bigrun: open one run's monitor in the real app (headless) and time what shows.

    python -m benchmarks.probe_monitor RUNS_DIR RUN_DIR [--fresh]

Prints one JSON line: seconds from opening the monitor until the charts drew data ("charts"), from pressing 2
until the completions viewer drew a step ("samples"), until the exact history caught up ("exact"), and memory.
"""
from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from benchmarks.common import peak_rss_mb, rss_mb


async def main(runs: Path, run: Path, fresh: bool) -> dict:
    import os

    from rich.console import Group

    from workbench.core.metrics import _view_file
    from workbench.tui.app import WorkbenchApp
    from workbench.tui.screens.monitor import MonitorScreen
    from workbench.tui.widgets.charts import MetricChart

    if fresh:
        _view_file(run / "metrics.jsonl").unlink(missing_ok=True)
    out: dict = {}
    app = WorkbenchApp(runs)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.5)
        out["base_mb"] = rss_mb(os.getpid())
        t0 = time.perf_counter()
        app.open_monitor(run)

        def drawn() -> list:
            screen = app.screen
            if not isinstance(screen, MonitorScreen):
                return []
            try:
                chart = screen.query_one("#chart-loss", MetricChart)
            except Exception:  # not composed yet
                return []
            return chart._cache[2] if chart._cache else []  # the values as drawn (the faint ones under the EMA)

        while not drawn():
            await asyncio.sleep(0.002)
        out["charts"] = time.perf_counter() - t0
        out["spike"] = any(40.0 in ys for _, _, ys in drawn())
        screen = app.screen
        # Switch to the completions tab the way the 2 key does, and time until the viewer has drawn a step
        # (Pilot.press waits for the app to go idle, which it does not while it reads on in the background).
        body = screen.query_one("#samples-body")
        drawn_at: list[float] = []
        original = body.render

        def render():
            if isinstance(body.content, Group) and not drawn_at:
                drawn_at.append(time.perf_counter())
            return original()

        body.render = render
        t1 = time.perf_counter()
        screen.action_tab("samples")
        while not drawn_at:
            await asyncio.sleep(0.002)
        out["samples"] = drawn_at[0] - t1
        out["steps"] = len(screen.samples.steps)
        out["shown"] = len(screen.samples.rows(screen.samples.steps[-1]))
        screen.action_tab("charts")
        while screen.overview is not None or screen.metrics_tail.behind:
            await asyncio.sleep(0.05)
        chart = screen.query_one("#chart-loss", MetricChart)
        while not (chart._cache and chart._cache[0][0] == id(screen.history)):  # drawn from the exact history
            await asyncio.sleep(0.01)
        out["exact"] = time.perf_counter() - t0
        out["spike_exact"] = any(40.0 in ys for _, _, ys in drawn())
        out["peak_mb"] = peak_rss_mb(os.getpid())
        await pilot.press("q")
    return out


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    result = asyncio.run(main(Path(args[0]), Path(args[1]), "--fresh" in sys.argv))
    print(json.dumps(result))
