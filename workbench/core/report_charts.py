"""PNG charts for `workbench report`: the only module of the workbench that imports matplotlib.

Imported by ``workbench.core.report.write_report`` only while a report is written, never when the TUI or the CLI
start (tests/bench/test_import_boundary.py checks it). Each chart is its own ``Figure`` drawn on an Agg canvas
(``FigureCanvasAgg``): no pyplot, no global backend or figure state, so a TUI thread worker can draw safely.

A metric chart draws, per run, the raw points faint and an EMA-smoothed line in the same colour (one colour and
one legend entry per run; a schedule such as the learning rate is drawn as it is); an eval curve (pass@k against k, say) draws each run's points joined by a line.
What to chart is decided by the light side (``workbench.core.report``: ``Chart``, ``Line``); this module only draws.
"""
from __future__ import annotations

import os
from pathlib import Path

from workbench.core import paths

# The font cache goes where the workbench keeps its caches (never the user's home when WORKBENCH_CACHE is set).
os.environ.setdefault("MPLCONFIGDIR", str(paths.cache_dir() / "matplotlib"))

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402  (after MPLCONFIGDIR)
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import NullLocator  # noqa: E402

SIZE_IN = (6.4, 3.4)
DPI = 150  # 960 x 510 px: sharp when the page shows it at half that width on a HiDPI screen
RAW_ALPHA = 0.3


def smoothing_weight(n: int) -> float:
    """The EMA's weight for a series of n points: a half-life of n/40 points (0.79 for 120 points, 0.97 for 1000),
    so the smoothed line lags by a small share of the run whatever its length; no smoothing up to 5 points."""
    return min(0.99, 0.5 ** (40.0 / n)) if n > 5 else 0.0


def ema(ys: list[float], weight: float) -> list[float]:
    """Exponential moving average, debiased at the start (TensorBoard's smoothing): the first value is ys[0]."""
    out, acc = [], 0.0
    for i, y in enumerate(ys, 1):
        acc = acc * weight + (1.0 - weight) * y
        out.append(acc / (1.0 - weight ** i) if weight else y)
    return out


def draw(chart) -> Figure:
    """The chart as a Figure (on an Agg canvas). Artists are labelled by role (gid "raw"/"ema"/"curve" + the run's
    label) so a test can read back what was plotted."""
    fig = Figure(figsize=SIZE_IN, dpi=DPI)
    fig.subplots_adjust(left=0.09, right=0.98, top=0.86, bottom=0.15)  # fixed: a layout engine doubles the time
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    several = len(chart.lines) > 1
    for line in chart.lines:
        if chart.kind == "curve":
            (art,) = ax.plot(line.xs, line.ys, color=line.color, marker="o", markersize=4, linewidth=1.8,
                             label=line.label)
            art.set_gid(f"curve:{line.label}")
            continue
        if not chart.smooth:  # a schedule (learning rate): the values themselves, nothing to smooth
            (art,) = ax.plot(line.xs, line.ys, color=line.color, linewidth=1.8, label=line.label if several else None)
            art.set_gid(f"raw:{line.label}")
            continue
        weight = smoothing_weight(len(line.ys))
        (raw,) = ax.plot(line.xs, line.ys, color=line.color, alpha=RAW_ALPHA, linewidth=1.0,
                         marker="o" if len(line.ys) <= 30 else None, markersize=2.5,
                         label=None if several else "raw")
        raw.set_gid(f"raw:{line.label}")
        (smooth,) = ax.plot(line.xs, ema(line.ys, weight), color=line.color, linewidth=2.0,
                            label=line.label if several else f"EMA (weight {weight:.2g})")
        smooth.set_gid(f"ema:{line.label}")
    fig.suptitle(chart.title, x=0.012, y=0.985, ha="left", va="top", fontsize=11)  # above the axis' "1e-4"
    ax.set_xlabel(chart.xlabel, fontsize=9)
    if chart.logx:  # k = 1, 2, 4, 8, ...: evenly spaced, labelled as numbers
        ax.set_xscale("log", base=2)
        ks = sorted({x for line in chart.lines for x in line.xs})
        ax.set_xticks(ks, [f"{k:g}" for k in ks])
        ax.xaxis.set_minor_locator(NullLocator())
    ax.tick_params(labelsize=8)
    ax.grid(True, color="#dddddd", linewidth=0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4), useOffset=False)  # 1e-4, not 0.0001000
    if chart.lines and (several or chart.smooth):
        ax.legend(fontsize=8, frameon=False, loc="best")
    return fig


def save(fig: Figure, path: Path) -> None:
    """Write the figure as a PNG (to a temporary name first: a reader never sees half an image)."""
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png", dpi=DPI, facecolor="white")
    os.replace(tmp, path)


def render(chart, path: Path) -> None:
    save(draw(chart), path)
