"""Metric charts: a small braille line-chart widget that draws series of a MetricsHistory at the screen's width
(MetricChart), or one metric of several runs' histories, each run in its own colour (OverlayChart, for Compare).

Why not plotext: drawing four plotext charts twice a second cost ~30 % of a core while watching a live run (its
canvas and the ANSI round trip through rich dominate). This widget draws straight into a braille grid (2x4 dots
per cell) and styled text, from at most ~2 points per column: the history keeps at most Series.CAP min/max
buckets per key and ``downsample`` buckets them again to the plot's width (min and max per column), so a run with
1,000,000 logged steps draws as fast as one with 100 and every spike stays visible. A chart recomputes only when
its data or size changed; otherwise a repaint returns the text it drew last. With several series the title line
carries a legend ("● name" per series in its colour), wrapped onto more lines when it is wider than the chart.
"""
from __future__ import annotations

import math
from itertools import groupby

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip
from textual.widget import Widget

from workbench.core.metrics import MetricsHistory
from workbench.core.summary import fmt_num

BRAILLE = 0x2800
DOT = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # DOT[row][col] within a cell
# SPAN[col][a][b]: the dots of rows a..b (0-3) of one column of a cell
SPAN = [[[sum(DOT[r][col] for r in range(a, b + 1)) for b in range(4)] for a in range(4)] for col in range(2)]
COLORS = ("cyan", "magenta", "green", "yellow", "blue", "red")


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


def _label(v: float) -> str:
    return fmt_num(int(v) if float(v).is_integer() and abs(v) < 1e6 else v)


Runs = list[tuple[str, str | None]]  # one screen line: (text, style) pieces


def legend(title: str, labels: list[str], colors: list[str], width: int, max_lines: int) -> list[Runs]:
    """The title, then one "● label" entry per series in its colour, wrapped onto as many lines as it takes (at
    most max_lines; the entries that do not fit then are counted as "+N more"). No entry is cut or runs past the
    width: a label too long for a whole line is shortened with "…"."""
    rows: list[list[tuple[str, str]]] = [[]]  # per line: its entries as (label, colour); the title comes first
    used = min(len(title), width)
    for i, (label, color) in enumerate(zip(labels, colors)):
        label = _fit(label, width - 2)
        if used and used + 4 + len(label) > width:  # "  ● label"
            if len(rows) == max_lines:
                return _legend_lines(title, rows, width, more=len(labels) - i)
            rows.append([])
            used = 0
        used += (2 if used else 0) + 2 + len(label)
        rows[-1].append((label, color))
    return _legend_lines(title, rows, width)


def _legend_lines(title: str, rows: list[list[tuple[str, str]]], width: int, more: int = 0) -> list[Runs]:
    def entries(i: int, row: list[tuple[str, str]]) -> Runs:
        out: Runs = [(_fit(title, width), "bold")] if i == 0 and title else []
        for label, color in row:
            out += [(("  " if out else "") + "● ", color), (label, "dim")]
        return out

    lines = [entries(i, row) for i, row in enumerate(rows)]
    if more:
        last = rows[-1]
        while True:  # drop entries from the last line until the count fits after them
            tail = f"+{more} more"
            used = sum(len(t) for t, _ in entries(len(rows) - 1, last))
            if used + (2 if used else 0) + len(tail) <= width or not last:
                break
            last.pop()
            more += 1
        lines[-1] = entries(len(rows) - 1, last)
        lines[-1].append((("  " if used else "") + _fit(tail, width), "dim"))
    return lines


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[:max(0, width - 1)] + "…"


def draw(series: list[tuple[str, list[float], list[float]]], width: int, height: int, title: str,
         colors: list[str] | None = None, x_format=None, y_range: tuple[float, float] | None = None) -> list[Runs]:
    """The whole chart as lines of styled runs: a title line (with a legend for several series, wrapped when it is
    wider than the chart), y labels, the braille plot, and an x-axis line with the first and last x (formatted by
    ``x_format``, default the number). ``colors`` gives each series its own colour (default: COLORS in order).
    ``y_range``: the y axis spans at least this (e.g. 0-100 for a percentage), more if the data goes beyond."""
    width, height = max(width, 12), max(height, 3)
    colors = list(colors or ()) + [COLORS[i % len(COLORS)] for i in range(len(colors or ()), len(series))]
    names = [key for key, _, _ in series] if len(series) > 1 else []
    if not any(xs for _, xs, _ in series):
        head = legend(f"{title}: no data yet", names, colors, width, max_lines=max(1, height - 1))
        head[0][0] = (head[0][0][0], "dim")
        return head
    head_lines = legend(title, names, colors, width, max_lines=max(1, height - 4))  # 3 plot rows at least
    xs_all = [x for _, xs, _ in series for x in xs]
    ys_all = [y for _, _, ys in series for y in ys]
    x0, x1, y0, y1 = min(xs_all), max(xs_all), min(ys_all), max(ys_all)
    if y_range is not None:
        y0, y1 = min(y0, y_range[0]), max(y1, y_range[1])
    if y1 == y0:
        pad = abs(y0) * 0.05 or 0.5
        y0, y1 = y0 - pad, y1 + pad
    mid = (y0 + y1) / 2
    labels = [_label(y1), _label(0.0 if abs(mid) < (y1 - y0) * 1e-3 else mid), _label(y0)]
    lw = max(len(s) for s in labels)
    pw, ph = max(4, width - lw - 1), max(1, height - 1 - len(head_lines))  # plot cells
    gw, gh = pw * 2, ph * 4  # dots
    dots = [[0] * pw for _ in range(ph)]
    owner = [[-1] * pw for _ in range(ph)]
    xspan = (x1 - x0) or 1.0
    yspan = y1 - y0

    def px(x: float) -> int:
        return min(gw - 1, int((x - x0) / xspan * (gw - 1) + 0.5)) if x1 > x0 else gw // 2

    def py(y: float) -> int:
        return min(gh - 1, max(0, int((y1 - y) / yspan * (gh - 1) + 0.5)))

    for si, (_, xs, ys) in enumerate(series):
        prev = None
        for x, y in zip(xs, ys):
            if not (math.isfinite(x) and math.isfinite(y)):
                prev = None
                continue
            cx, cy = px(x), py(y)
            if prev is None:
                segs = [(cx, cy, cy)]
            else:  # join to the previous point: per dot column, the vertical span the line crosses
                ax, ay = prev
                segs = []
                steps = max(1, cx - ax)
                last = ay
                for k in range(1, steps + 1):
                    gx = ax + k if cx > ax else cx
                    gy = ay + (cy - ay) * k // steps if cx > ax else cy
                    segs.append((gx, min(last, gy), max(last, gy)))
                    last = gy
            for gx, ga, gb in segs:  # set the dots ga..gb of dot column gx, a cell row at a time
                col, bit = gx // 2, gx % 2
                for row in range(ga // 4, gb // 4 + 1):
                    lo, hi = max(ga, row * 4) - row * 4, min(gb, row * 4 + 3) - row * 4
                    dots[row][col] |= SPAN[bit][lo][hi]
                    owner[row][col] = si
            prev = (cx, cy)

    lines = head_lines
    label_rows = {0: labels[0], (ph - 1) // 2: labels[1], ph - 1: labels[2]}
    for r in range(ph):
        line: Runs = [(label_rows[r].rjust(lw) + "┤" if r in label_rows else " " * lw + "│", "dim")]
        chars = "".join([chr(BRAILLE + d) if d else " " for d in dots[r]])
        c = 0
        for o, group in groupby(owner[r]):
            n = sum(1 for _ in group)
            line.append((chars[c:c + n], colors[o] if o >= 0 else None))
            c += n
        lines.append(line)
    left, right = (x_format or _label)(x0), (x_format or _label)(x1)
    lines.append([(" " * lw + "└" + left + " " * max(1, pw - len(left) - len(right)) + right, "dim")])
    return lines


def to_text(lines: list[Runs]) -> Text:
    """The drawn chart as one rich Text (for printing outside the TUI)."""
    out = Text(no_wrap=True, overflow="crop")
    for i, line in enumerate(lines):
        if i:
            out.append("\n")
        for text, style in line:
            out.append(text, style=style)
    return out


_STYLES: dict[str | None, Style] = {}


def _style(name: str | None) -> Style:
    if name not in _STYLES:
        _STYLES[name] = Style.parse(name) if name else Style()
    return _STYLES[name]


class MetricChart(Widget):
    """Plots the first present key of each entry of ``keys`` (an entry may be alternatives, e.g. kl|objective/kl)."""

    DEFAULT_CSS = """
    MetricChart { min-height: 6; height: 1fr; }
    """

    def __init__(self, title: str, keys: list[str], **kwargs):
        super().__init__(**kwargs)
        self.title = title
        self.keys = keys
        self.history: MetricsHistory | None = None
        self.series_colors: list[str] | None = None  # one per series (default: COLORS in order)
        self.x_format = None  # str of an x value on the axis line (default: the number)
        self.y_range: tuple[float, float] | None = None  # the y axis spans at least this (see draw)
        self._cache: tuple | None = None  # (signature, points): a repaint without new data skips downsampling
        self._drawn: tuple | None = None  # (signature/size/title, strips)

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
        buckets = max(8, width - 10)  # the y-axis labels take some columns
        pts = [(k, *downsample(xs, ys, buckets)) for k, xs, ys in raw]
        self._cache = (sig, pts)
        return pts

    def strips(self) -> list[Strip]:
        w, h = self.size.width, self.size.height
        pts = self.points(w)
        look = (self.title, tuple(self.series_colors or ()), self.x_format, self.y_range)
        key = (self._cache[0] if self._cache else None, w, h, look)
        if self._drawn and self._drawn[0] == key:
            return self._drawn[1]
        lines = draw(pts, w, h, self.title, self.series_colors, self.x_format, self.y_range)
        strips = [Strip([Segment(t, _style(st)) for t, st in line]).crop_extend(0, w, None) for line in lines]
        self._drawn = (key, strips)
        return strips

    def render_line(self, y: int) -> Strip:
        """Textual's line API: cached strips, rebuilt only when the data, the size or the title changed."""
        strips = self.strips()
        return strips[y] if y < len(strips) else Strip.blank(self.size.width)


class OverlayChart(MetricChart):
    """One metric of several histories (one per run) overlaid: each series in its run's own colour, the legend
    naming the runs. Same drawing and caching as MetricChart."""

    def __init__(self, title: str, key: str, **kwargs):
        super().__init__(title, [key], **kwargs)
        self.key = key
        self.runs: list[tuple[str, MetricsHistory]] = []  # (legend label, history)

    def show_runs(self, runs: list[tuple[str, str, MetricsHistory]], x_format=None) -> None:
        """runs: (label, colour, history) each; the same colour for a run on every chart."""
        self.runs = [(label, hist) for label, _, hist in runs]
        self.series_colors = [color for _, color, _ in runs]
        self.x_format = x_format
        self.refresh()

    def series_keys(self) -> list[str]:
        return [label for label, hist in self.runs if self.key in hist.series]

    def points(self, width: int) -> list[tuple[str, list[float], list[float]]]:
        sig: list = [width]
        found = []
        for label, hist in self.runs:
            with hist.lock:
                s = hist.series.get(self.key)
            sig.append((label, id(hist), -1 if s is None else s.version))
            found.append((label, hist, s))
        if self._cache and self._cache[0] == tuple(sig):
            return self._cache[1]
        buckets = max(8, width - 10)  # as MetricChart: the y-axis labels take some columns
        pts = []
        for label, hist, s in found:
            if s is None:
                pts.append((label, [], []))
                continue
            with hist.lock:
                xs, ys = s.points()
            pts.append((label, *downsample(xs, ys, buckets)))
        self._cache = (tuple(sig), pts)
        return pts
