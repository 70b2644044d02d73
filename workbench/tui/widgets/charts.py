"""Metric charts: a PlotextPlot that draws one or more series of a MetricsHistory, downsampled to its width.

Each chart owns its plot object (textual-plotext gives every widget its own), replots only in render() (so a
burst of new rows costs one draw per frame), and never hands plotext more than ~2 points per column: the history
keeps at most Series.CAP min/max buckets per key, and those are bucketed again to the chart's width, so a run with
1,000,000 logged steps draws as fast as one with 100 and every spike stays visible.
"""
from __future__ import annotations

from textual_plotext import PlotextPlot

from workbench.core.metrics import MetricsHistory


def downsample(xs: list[float], ys: list[float], buckets: int) -> tuple[list[float], list[float]]:
    """At most 2*buckets points: the min and the max of each of ``buckets`` equal slices, in x order."""
    n = min(len(xs), len(ys))
    if buckets <= 0 or n <= 2 * buckets:
        return list(xs[:n]), list(ys[:n])
    out_x: list[float] = []
    out_y: list[float] = []
    size = n / buckets
    for b in range(buckets):
        lo, hi = int(b * size), int((b + 1) * size)
        seg = ys[lo:hi]
        if not seg:
            continue
        i, j = seg.index(min(seg)), seg.index(max(seg))
        for k in sorted({i, j}):
            out_x.append(xs[lo + k])
            out_y.append(seg[k])
    return out_x, out_y


class MetricChart(PlotextPlot):
    """Plots the first present key of each entry of ``keys`` (an entry may be alternatives, e.g. kl|objective/kl)."""

    DEFAULT_CSS = """
    MetricChart { min-height: 6; }
    """

    def __init__(self, title: str, keys: list[str], **kwargs):
        super().__init__(**kwargs)
        self.title = title
        self.keys = keys
        self.history: MetricsHistory | None = None
        self._cache: tuple | None = None  # (signature, points) so a repaint without new data skips downsampling

    def show(self, history: MetricsHistory, keys: list[str] | None = None, title: str | None = None) -> None:
        self.history = history
        if keys is not None:
            self.keys = keys
        if title is not None:
            self.title = title
        self.refresh()

    def series_keys(self) -> list[str]:
        if self.history is None:
            return []
        out = []
        for entry in self.keys:
            for alt in entry.split("|"):
                if alt in self.history.series:
                    out.append(alt)
                    break
        return out

    def points(self, width: int) -> list[tuple[str, list[float], list[float]]]:
        hist = self.history
        if hist is None:
            return []
        with hist.lock:
            keys = self.series_keys()
            sig = (id(hist), tuple(keys), tuple(hist.series[k].version for k in keys), width)
            if self._cache and self._cache[0] == sig:
                return self._cache[1]
            raw = [(k, *hist.series[k].points()) for k in keys]
        buckets = max(8, width - 10)  # the y-axis labels take ~10 columns
        pts = [(k, *downsample(xs, ys, buckets)) for k, xs, ys in raw]
        self._cache = (sig, pts)
        return pts

    def render(self):
        plt = self.plt
        plt.clear_figure()
        pts = self.points(self.size.width)
        plt.title(self.title)
        if not pts:
            plt.title(f"{self.title}: no data yet")
        for key, xs, ys in pts:
            plt.plot(xs, ys, label=key if len(pts) > 1 else None, marker="braille")
        return super().render()
