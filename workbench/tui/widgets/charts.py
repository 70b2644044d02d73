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
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from workbench.core.metrics import MetricsHistory
from workbench.core.summary import fmt_num

BRAILLE = 0x2800
DOT = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # DOT[row][col] within a cell
# SPAN[col][a][b]: the dots of rows a..b (0-3) of one column of a cell
SPAN = [[[sum(DOT[r][col] for r in range(a, b + 1)) for b in range(4)] for a in range(4)] for col in range(2)]
CELL = [" "] + [chr(BRAILLE + d) for d in range(1, 256)]  # a cell's character by its dots
COLORS = ("cyan", "magenta", "green", "yellow", "blue", "red")


def downsample(xs: list[float], ys: list[float], buckets: int) -> tuple[list[float], list[float]]:
    """At most 2*buckets points: the first and the last point (so the x axis spans the whole series: a live run's
    newest step is on the axis), and the min and the max of each of ``buckets - 1`` equal slices, in x order."""
    n = min(len(xs), len(ys))
    if buckets <= 1 or n <= 2 * buckets:
        return list(xs[:n]), list(ys[:n])
    out_x: list[float] = [xs[0]]
    out_y: list[float] = [ys[0]]
    size = (n - 2) / (buckets - 1)
    for b in range(buckets - 1):
        lo, hi = 1 + int(b * size), 1 + int((b + 1) * size)
        seg = ys[lo:hi]
        if not seg:
            continue
        i, j = seg.index(min(seg)), seg.index(max(seg))
        for k in sorted({i, j}):
            out_x.append(xs[lo + k])
            out_y.append(seg[k])
    out_x.append(xs[n - 1])
    out_y.append(ys[n - 1])
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
         colors: list[str] | None = None, x_format=None, y_range: tuple[float, float] | None = None, *,
         faint: list[tuple[list[float], list[float]]] | None = None, note: str = "", axis_note: str = "",
         title_style: str = "bold") -> list[Runs]:
    """The whole chart as lines of styled runs: a title line (with a legend for several series, wrapped when it is
    wider than the chart), y labels, the braille plot, and an x-axis line with the first and last x (formatted by
    ``x_format``, default the number). ``colors`` gives each series its own colour (default: COLORS in order).
    ``y_range``: the y axis spans at least this (e.g. 0-100 for a percentage), more if the data goes beyond.
    ``faint``: per series, points drawn dim behind it (the raw values under a smoothed line). ``note``: what an
    empty chart says (wrapped under the title). ``axis_note``: a word centred on the x-axis line (e.g. "ema 0.9")."""
    width, height = max(width, 12), max(height, 3)
    colors = list(colors or ()) + [COLORS[i % len(COLORS)] for i in range(len(colors or ()), len(series))]
    names = [key for key, _, _ in series] if len(series) > 1 else []
    if not any(xs for _, xs, _ in series):
        head = legend(title, names, colors, width, max_lines=max(1, height - 1))
        head[0][0] = (head[0][0][0], title_style)
        words = (note or "no data yet").split()
        while words and len(head) < height:  # the reason, wrapped at the width
            line = words.pop(0)
            while words and len(line) + 1 + len(words[0]) <= width:
                line += " " + words.pop(0)
            head.append([(_fit(line, width), "dim")])
        return head
    head_lines = legend(title, names, colors, width, max_lines=max(1, height - 4))  # 3 plot rows at least
    head_lines[0][0] = (head_lines[0][0][0], title_style)
    faint = [f for f in faint or [] if f is not None]
    xs_all = [x for _, xs, _ in series for x in xs] + [x for xs, _ in faint for x in xs]
    ys_all = [y for _, _, ys in series for y in ys] + [y for _, ys in faint for y in ys]
    x0, x1, y0, y1 = min(xs_all), max(xs_all), min(ys_all), max(ys_all)
    if y_range is not None:
        y0, y1 = min(y0, y_range[0]), max(y1, y_range[1])
    if y1 - y0 <= 1e-9 * max(abs(y0), abs(y1)):  # constant (an EMA of a constant wobbles in the last digits)
        y0 = y1 = (y0 + y1) / 2
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

    n = len(series)  # owner index n+i: the faint points of series i, drawn first so the series' own dots win
    layers = [(n + i, xs, ys) for i, (xs, ys) in enumerate(faint or []) if i < n] + \
        [(si, xs, ys) for si, (_, xs, ys) in enumerate(series)]
    colors = colors[:n] + [f"dim {c}" for c in colors[:n]]
    sx = (gw - 1) / xspan if x1 > x0 else 0.0
    sy = (gh - 1) / yspan
    isfinite = math.isfinite
    for si, xs, ys in layers:
        have, ax, ay = False, 0, 0
        for x, y in zip(xs, ys):
            if not (isfinite(x) and isfinite(y)):
                have = False
                continue
            cx = int((x - x0) * sx + 0.5) if sx else gw // 2
            cx = gw - 1 if cx > gw - 1 else cx
            cy = int((y1 - y) * sy + 0.5)
            cy = 0 if cy < 0 else (gh - 1 if cy > gh - 1 else cy)
            if not have:
                spans = ((cx, cy, cy),)
            elif cx > ax:  # join to the previous point: per dot column, the vertical span the line crosses
                steps, d, last, spans = cx - ax, cy - ay, ay, []
                for k in range(1, steps + 1):
                    gy = ay + d * k // steps
                    spans.append((ax + k, gy, last) if gy < last else (ax + k, last, gy))
                    last = gy
            else:
                spans = ((cx, cy, ay) if cy < ay else (cx, ay, cy),)
            for gx, ga, gb in spans:  # set the dots ga..gb of dot column gx, a cell row at a time
                col, bits = gx >> 1, SPAN[gx & 1]
                ra, rb = ga >> 2, gb >> 2
                if ra == rb:
                    dots[ra][col] |= bits[ga & 3][gb & 3]
                    owner[ra][col] = si
                    continue
                dots[ra][col] |= bits[ga & 3][3]
                owner[ra][col] = si
                for row in range(ra + 1, rb):
                    dots[row][col] |= bits[0][3]
                    owner[row][col] = si
                dots[rb][col] |= bits[0][gb & 3]
                owner[rb][col] = si
            ax, ay, have = cx, cy, True

    lines = head_lines
    label_rows = {0: labels[0], (ph - 1) // 2: labels[1], ph - 1: labels[2]}
    for r in range(ph):
        line: Runs = [(label_rows[r].rjust(lw) + "┤" if r in label_rows else " " * lw + "│", "dim")]
        chars = "".join([CELL[d] for d in dots[r]])
        c, cur, row = 0, next((o for o in owner[r] if o >= 0), -1), owner[r]
        for i, o in enumerate(row):  # a blank cell takes its left neighbour's colour: fewer runs to render
            if o < 0:
                row[i] = cur
            else:
                cur = o
        for o, group in groupby(row):
            k = sum(1 for _ in group)
            line.append((chars[c:c + k], colors[o] if o >= 0 else None))
            c += k
        lines.append(line)
    left, right = (x_format or _label)(x0), (x_format or _label)(x1)
    gap = max(1, pw - len(left) - len(right))
    if axis_note and gap >= len(axis_note) + 4:
        a = (gap - len(axis_note)) // 2
        lines.append([(" " * lw + "└" + left + " " * a, "dim"), (axis_note, "dim italic"),
                      (" " * (gap - a - len(axis_note)) + right, "dim")])
    else:
        lines.append([(" " * lw + "└" + left + " " * gap + right, "dim")])
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


def ema(ys: list[float], weight: float) -> list[float]:
    """Exponential moving average, debiased at the start as TensorBoard's smoothing is (weight 0: the values)."""
    out: list[float] = []
    if not ys:
        return out
    base = ys[0]  # averaged as offsets from the first value: a constant stays exactly constant
    last, scale = 0.0, 1.0
    for y in ys:
        last = last * weight + (1 - weight) * (y - base)
        scale *= weight
        out.append(base + last / (1 - scale))
    return out


def _strip(line: Runs, width: int) -> Strip:
    """One drawn line as a Strip of exactly ``width`` cells (every character draw() uses is one cell wide)."""
    used = sum(len(t) for t, _ in line)
    if used > width:
        return Strip([Segment(t, _style(st)) for t, st in line]).crop_extend(0, width, None)
    segments = [Segment(t, _style(st)) for t, st in line]
    if used < width:
        segments.append(Segment(" " * (width - used)))
    return Strip(segments, width)


class MetricChart(Widget):
    """Plots the first present key of each entry of ``keys`` (an entry may be alternatives, e.g. kl|objective/kl).

    ``smoothing``: None (the default) draws the values; a weight in [0, 1) makes the chart smoothable: above 0 it
    draws the EMA of each series with the values faint behind it, and the x-axis line says "ema W" ("raw" at 0).
    ``labels`` maps a key to its legend label; ``note`` is what the chart says while it has no data."""

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
        self.smoothing: float | None = None
        self.labels: dict[str, str] = {}
        self.note = ""
        self._cache: tuple | None = None  # (signature, points, raw points): a repaint without new data skips work
        self._drawn: tuple | None = None  # (signature/size/look, strips)
        self._memo: tuple | None = None  # (size, strips) for the lines of one repaint

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
                    if alt not in out:
                        out.append(alt)
                    break
        return out

    def points(self, width: int) -> list[tuple[str, list[float], list[float]]]:
        """The series as drawn, (key, xs, ys) each, downsampled to the width: the EMA when smoothing > 0."""
        return self._points(width)[0]

    def raw_points(self, width: int) -> list[tuple[str, list[float], list[float]]]:
        """The same, never smoothed."""
        return self._points(width)[1]

    def _points(self, width: int) -> tuple[list, list]:
        hist = self.history
        if hist is None:
            return [], []
        with hist.lock:
            keys = self.series_keys()
            sig = (id(hist), tuple(keys), tuple(hist.series[k].version for k in keys), width, self.smoothing)
            if self._cache and self._cache[0] == sig:
                return self._cache[1], self._cache[2]
            full = [(k, *hist.series[k].points()) for k in keys]
        buckets = max(8, width - 10)  # the y-axis labels take some columns
        raw = [(k, *downsample(xs, ys, buckets)) for k, xs, ys in full]
        pts = raw
        if self.smoothing:  # smoothed over every kept point, then downsampled like the values
            pts = [(k, *downsample(xs, ema(ys, self.smoothing), buckets)) for k, xs, ys in full]
        self._cache = (sig, pts, raw)
        return pts, raw

    def strips(self) -> list[Strip]:
        w, h = self.size.width, self.size.height
        pts = self.points(w)
        faint = [(xs, ys) for _, xs, ys in self.raw_points(w)] if self.smoothing else None
        axis = "" if self.smoothing is None else (f"ema {self.smoothing:g}" if self.smoothing else "raw")
        look = (self.title, tuple(self.series_colors or ()), self.x_format, self.y_range, axis, self.note,
                tuple(self.labels.items()), self.has_focus)
        key = (self._cache[0] if self._cache else None, w, h, look)
        if self._drawn and self._drawn[0] == key:
            return self._drawn[1]
        named = [(self.labels.get(k, k), xs, ys) for k, xs, ys in pts]
        lines = draw(named, w, h, self.title, self.series_colors, self.x_format, self.y_range, faint=faint,
                     note=self.note, axis_note=axis, title_style="bold reverse" if self.has_focus else "bold")
        strips = [_strip(line, w) for line in lines]
        self._drawn = (key, strips)
        return strips

    def redraw(self, history: MetricsHistory, keys: list[str], title: str, visible: bool = True) -> None:
        """Show this data and repaint only the lines that differ from what is on screen: one new row of a live run
        usually moves a few columns and the axis labels, not the whole chart. Not ``visible`` (scrolled away): it
        is drawn when it is shown again."""
        before = self._drawn[1] if self._drawn else None
        self.history, self.keys, self.title = history, keys, title
        if before is None or not visible or not self.size.width or not self.size.height:
            self.refresh()
            return
        after = self.strips()
        if len(after) != len(before):
            self.refresh()
            return
        w = self.size.width
        changed = [Region(0, y, w, 1) for y, (a, b) in enumerate(zip(before, after)) if a != b]
        if changed:
            self.refresh(*changed)

    def on_focus(self) -> None:
        self.refresh()  # the title shows focus

    def on_blur(self) -> None:
        self.refresh()

    def refresh(self, *regions, **kwargs):
        self._memo = None  # render_line asks strips() again
        return super().refresh(*regions, **kwargs)

    def render_line(self, y: int) -> Strip:
        """Textual's line API: cached strips, rebuilt only when the data, the size or the look changed (and looked
        up once per repaint, not once per line)."""
        memo = getattr(self, "_memo", None)
        if memo is None or memo[0] is not self._size:  # Widget.size is computed on each call; _size is set as
            memo = self._memo = (self._size, self.strips())  # the layout resizes it (textual is pinned)
        strips = memo[1]
        return strips[y] if y < len(strips) else Strip.blank(memo[0].width)


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
