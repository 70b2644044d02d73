"""The system panel in the TUI, against a stand-in NVML (two GPUs, GPU 0 held by a live run's process): the runs
list's one line, and the monitor's System tab (charts, GPU table, this run's GPU memory), sampled only while shown."""
from __future__ import annotations

import json

import pytest

from tests.fake_nvml import GIB, sleeper, two_gpus
from tests.tui.conftest import make_run
from tests.tui.screen_text import screen_text
from workbench.core import gpus, system
from workbench.core.rundir import hostname
from workbench.tui.screens.monitor import MonitorScreen
from workbench.tui.widgets.charts import MetricChart
from workbench.tui.widgets.system import SystemLine

RUN = "20260101-000000-grpo-arith"


@pytest.fixture
def live(runs_dir):
    """A full fake run dir (make_run), live: its runner is a real process NVML reports on GPU 0."""
    d = make_run(runs_dir, RUN, state="running", host=hostname())
    proc = sleeper(d)
    st = json.loads((d / "status.json").read_text())
    (d / "status.json").write_text(json.dumps(dict(st, runner_pid=proc.pid, pgid=proc.pid)))
    gpus.use_nvml(two_gpus(proc.pid, used=20 * GIB))
    yield d, proc
    gpus.use_nvml(None)
    proc.kill()
    proc.wait(timeout=10)


async def until(pilot, cond, what: str, timeout: float = 8.0):
    waited = 0.0
    while waited < timeout:
        if cond():
            return
        await pilot.pause(0.1)
        waited += 0.1
    raise AssertionError(f"timed out waiting for {what}")


def line_text(app) -> str:
    return str(app.screen.query_one(SystemLine).render())


async def test_runs_list_shows_free_gpus_cpu_ram_disk_in_one_line(live, app_factory):
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: "GPU" in line_text(app), "the system line")
        text = line_text(app)
        assert text.startswith("GPU 1/2 free · CPU ") and "RAM " in text and "GiB free" in text
        shown = [row for row in screen_text(app).splitlines() if "GPU 1/2 free" in row]
        assert len(shown) == 1 and len(shown[0]) <= 80 and shown[0].rstrip().endswith("GiB free")


async def test_runs_list_line_without_gpu_fits_80_columns(runs_dir, app_factory, monkeypatch):
    monkeypatch.setattr(gpus, "_nvml", None)
    monkeypatch.setattr(gpus, "_nvml_error", "no GPU: NVML unavailable (NVML Shared Library Not Found because "
                                             "no NVIDIA driver is installed on this machine)")
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: "no GPU" in line_text(app), "the system line")
        row = next(r for r in screen_text(app).splitlines() if "no GPU" in r)
        assert len(row) <= 80 and "CPU" in row and "RAM" in row  # the reason gave way, not the numbers


async def test_monitor_system_tab_charts_the_machine_and_this_runs_gpu_memory(live, app_factory):
    d, proc = live
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_monitor(d)
        await until(pilot, lambda: isinstance(app.screen, MonitorScreen), "the monitor")
        await pilot.press("5")
        await until(pilot, lambda: f"pid {proc.pid} holds 20 GiB on GPU 0" in screen_text(app), "this run's pid")
        text = screen_text(app)
        assert "GPU 1/2 free" in text and "64°C" in text and "612 W" in text
        titles = {c.title for c in app.screen.query(MetricChart) if c.display}
        assert {"CPU %", "RAM used (GiB)", "GPU utilisation %", "GPU memory (GiB)"} <= titles
        util = app.screen.query_one("#system-gpu-util", MetricChart)
        assert util.series_keys() == ["GPU 0", "GPU 1"]
        assert max(len(line) for line in text.splitlines()) <= 80


async def test_system_tab_samples_only_while_shown(live, app_factory, monkeypatch):
    d, _ = live
    calls = []
    real = system.SystemSampler.sample

    def counted(self):
        calls.append(app.screen.query_one("#tabs").active if isinstance(app.screen, MonitorScreen) else "runs")
        return real(self)

    monkeypatch.setattr(system.SystemSampler, "sample", counted)
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_monitor(d)
        await until(pilot, lambda: isinstance(app.screen, MonitorScreen), "the monitor")
        await pilot.pause(2.5)  # charts tab: the System tab and the covered runs list must not sample
        assert [c for c in calls if c != "runs"] == []
        await pilot.press("5")
        await until(pilot, lambda: len([c for c in calls if c == "system"]) >= 2, "two samples on the System tab")
        await pilot.press("1")
        await pilot.pause(0.2)
        n = len(calls)
        await pilot.pause(2.5)
        assert len(calls) == n
