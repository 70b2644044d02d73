"""The monitor's System tab for one run: CPU %, RAM and per-GPU utilisation and memory charts over the sampler's
history (the last ten minutes), the GPU table (utilisation, memory, temperature, power, what this run holds) and
this run's processes' GPU memory. Samples once a second while the tab is shown (Show/Hide pause its timer) and
its screen is the current one; see widgets/system.py.
"""
from __future__ import annotations

import time

from textual import work
from textual.containers import Grid, VerticalScroll
from textual.widgets import Static

from workbench.core import system
from workbench.core.metrics import MetricsHistory
from workbench.core.rundir import LIVE_STATES, RunDir
from workbench.tui.widgets.charts import MetricChart
from workbench.tui.widgets.system import SAMPLE_EVERY, Sampled, sampler_of


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


class SystemPanel(VerticalScroll):

    DEFAULT_CSS = """
    SystemPanel { height: 1fr; padding: 0 1; }
    SystemPanel #system-now { height: 1; }
    SystemPanel #system-charts { grid-size: 2; grid-gutter: 0 1; height: 1fr; min-height: 12; }
    SystemPanel #system-charts.-host-only { min-height: 7; }
    SystemPanel MetricChart { min-height: 6; }
    SystemPanel #system-gpus, SystemPanel #system-procs { height: auto; }
    """

    def __init__(self, rd: RunDir, **kwargs):
        super().__init__(**kwargs)
        self.rd = rd
        self._busy = False
        self._timer = None
        self._gpu_charts: bool | None = None  # shown? (known after the first sample)

    def compose(self):
        yield Static("sampling…", id="system-now", markup=False)
        with Grid(id="system-charts"):
            yield MetricChart("CPU %", ["cpu"], id="system-cpu")
            yield MetricChart("RAM used (GiB)", ["ram"], id="system-ram")
            yield MetricChart("GPU utilisation %", [], id="system-gpu-util")
            yield MetricChart("GPU memory (GiB)", [], id="system-gpu-mem")
        yield Static("", id="system-gpus", markup=False)
        yield Static("", id="system-procs", markup=False)

    def on_mount(self) -> None:
        for chart in self.query(MetricChart):
            chart.x_format = _clock
            chart.y_range = (0, 100)  # the percentages; memory charts get their capacity at the first sample
        self._timer = self.set_interval(SAMPLE_EVERY, self._tick, pause=True)  # runs only while shown

    def on_show(self) -> None:
        if self._timer is not None:
            self._timer.resume()
        self._tick()

    def on_hide(self) -> None:
        if self._timer is not None:
            self._timer.pause()

    def _tick(self) -> None:
        if not self._busy and self.app.screen is self.screen:
            self._busy = True
            self._sample()

    @work(thread=True, group="system-panel", exit_on_error=False)
    def _sample(self) -> None:
        try:
            sample = sampler_of(self.app).sample()
            st = self.rd.read_status()
            self.post_message(Sampled(sample, system.run_gpu_memory(sample.gpu, [(self.rd, st)]), st.get("state")))
        finally:
            self._busy = False

    def on_sampled(self, message: Sampled) -> None:
        message.stop()
        s, width = message.sample, max(40, self.content_size.width or 78)
        self.query_one("#system-now", Static).update(system.status_line(s, width, cores=True), layout=False)
        self._show_charts(sampler_of(self.app).samples(), s)
        rows = message.rows or []
        mine: dict[int, int] = {}
        for r in rows:
            mine[r.gpu] = mine.get(r.gpu, 0) + r.memory
        gpus = system.gpu_table(s.gpu, width, mine if s.gpu.available else None)
        self.query_one("#system-gpus", Static).update("\n".join(gpus) if s.gpu.available else "")
        procs = self.query_one("#system-procs", Static)
        if not s.gpu.available:
            procs.update("")
        elif rows:
            procs.update("\n".join(f"this run's pid {r.pid} holds {system.fmt_gib(r.memory) + ' GiB' if r.memory else '?'}"
                                   f" on GPU {r.gpu}" for r in rows))
        else:
            procs.update("this run holds no GPU memory"
                         + ("" if message.state in LIVE_STATES else f" (it is {message.state or 'not running'})"))

    def _show_charts(self, samples: list[system.SystemSample], now: system.SystemSample) -> None:
        host, util, mem = system.history_rows(samples)
        gpus = now.gpu.available
        if gpus != self._gpu_charts:  # the GPU row and tables only where there are GPUs
            self._gpu_charts = gpus
            for name in ("#system-gpu-util", "#system-gpu-mem", "#system-gpus", "#system-procs"):
                self.query_one(name).display = gpus
            self.query_one("#system-charts", Grid).set_class(not gpus, "-host-only")
        # Percentages against 0-100, memory against the capacity: how full the machine is reads at a glance.
        self.query_one("#system-ram", MetricChart).y_range = (0, now.ram_total / system.GIB)
        if gpus:
            self.query_one("#system-gpu-mem", MetricChart).y_range = (
                0, max(g.memory_total for g in now.gpu.gpus) / system.GIB)
        for chart_id, rows, keys in (("#system-cpu", host, ["cpu"]), ("#system-ram", host, ["ram"]),
                                     ("#system-gpu-util", util, None), ("#system-gpu-mem", mem, None)):
            if rows:
                self.query_one(chart_id, MetricChart).show(
                    _history(rows), keys or [k for k in rows[-1] if k != "step"])  # GPUs in index order


def _history(rows: list[dict]) -> MetricsHistory:
    hist = MetricsHistory()
    hist.add(rows)
    return hist
