"""The runs list as a table of plain text cells, and which of its columns fit a width: what the TUI's runs screen
and `workbench ls` both show (UI-free; no Textual, no torch).

Columns: run, state, stage, model, step, reward, loss, age, time. State, step (38/300), reward and age are always
shown in full; the run id (and the model) are abbreviated in the middle, keeping the distinctive tail, when the
width is short; loss, stage, time and model are dropped, in that order of need, when even the abbreviated run id
would not fit. So at 80 columns the list reads "…-grpo-arith-lr1e-4  completed  1200/1200  0.7344  3h12m", never
"comple" or "1200/120".
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from workbench.core import pipeline, summary
from workbench.core.pipedir import PipelineDir
from workbench.core.rundir import RunDir

ELLIPSIS = "…"


@dataclass(frozen=True)
class Column:
    name: str
    drop: int = 0  # 0: always shown; else dropped before columns with a higher number (1 is kept longest)
    min: int | None = None  # flexible: abbreviated down to this many characters; None: always at full width


COLUMNS = (Column("run", min=20), Column("state"), Column("stage", drop=2), Column("model", drop=4, min=12),
           Column("step"), Column("reward"), Column("loss", drop=1), Column("age"), Column("time", drop=3))
NAMES = tuple(c.name for c in COLUMNS)
RUN, MODEL = NAMES.index("run"), NAMES.index("model")
RUN_COMFORT = 28  # an optional column is shown only if the run id keeps this much (or all of itself)


def fmt_age(ts: float | None, now: float | None = None) -> str:
    """How long ago, in at most six characters: 45s, 12m, 3h12m, 2d3h, 15d."""
    if not ts:
        return "-"
    s = int(max(0, (time.time() if now is None else now) - ts))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        h, m = divmod(s // 60, 60)
        return f"{h}h{m:02d}m" if m else f"{h}h"
    d, h = divmod(s // 3600, 24)
    return f"{d}d{h}h" if d < 10 and h else f"{d}d"


def abbreviate(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters: the middle elided, a third kept in front and the rest from the end
    (a run id's distinctive part is its name, after the time stamp)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    head = (width - 1) // 3
    return text[:head] + ELLIPSIS + text[len(text) - (width - 1 - head):]


def run_cells(rd: RunDir, st: dict) -> tuple[str, ...]:
    s = summary.run_summary(rd.metrics_path)
    step = f"{s['step']}/{s['max_steps']}" if s["max_steps"] else str(s["step"])
    return (rd.id, st.get("display_state") or "?", st.get("stage") or "?", str(st.get("model") or "?"), step,
            summary.fmt_num(s["latest"].get("reward")), summary.fmt_num(s["latest"].get("loss")),
            fmt_age(st.get("created") or st.get("started")), summary.fmt_duration(summary.duration_of(st)))


def pipeline_cells(pd: PipelineDir, st: dict) -> tuple[str, ...]:
    return (pd.id, st.get("display_state") or "?", "pipeline", str(st.get("name") or "?"), pipeline.stage_label(st),
            "", "", fmt_age(st.get("created") or st.get("started")), summary.fmt_duration(summary.duration_of(st)))


def fit(natural: list[int], width: int, gap: int) -> list[int | None]:
    """Each column's width (None: not shown) for a table ``width`` characters wide, where every shown column costs
    ``gap`` more. ``natural``: each column's widest value (header included)."""
    shown: list[int | None] = [None] * len(COLUMNS)
    used = 0
    for i, col in enumerate(COLUMNS):  # the columns always shown, the flexible ones at their least
        if not col.drop:
            shown[i] = natural[i] if col.min is None else min(natural[i], col.min)
            used += shown[i] + gap
    reserve = max(0, min(natural[RUN], RUN_COMFORT) - shown[RUN])  # the run id's room before any optional column
    for i in sorted((i for i, c in enumerate(COLUMNS) if c.drop), key=lambda i: COLUMNS[i].drop):
        col = COLUMNS[i]
        need = natural[i] if col.min is None else min(natural[i], col.min)
        if used + reserve + need + gap <= width:
            shown[i] = need
            used += need + gap
    flex = [i for i in (RUN, MODEL) if shown[i] is not None]
    room = width - used + sum(shown[i] for i in flex)  # what the run id and the model share
    # The run id names the row: it grows to its full width first while the model keeps a third of the room (or all
    # of a short name); the model gets what is left.
    model_least = shown[MODEL] if shown[MODEL] is not None else 0
    if shown[MODEL] is not None:
        model_least = max(model_least, min(natural[MODEL], room // 3))
    shown[RUN] = max(shown[RUN], min(natural[RUN], room - model_least))
    if shown[MODEL] is not None:
        shown[MODEL] = max(model_least, min(natural[MODEL], room - shown[RUN]))
    return shown


def natural_widths(rows: list[tuple[str, ...]], headers: tuple[str, ...] = NAMES) -> list[int]:
    return [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]


def plain_lines(rows: list[tuple[str, tuple[str, ...]]], width: int | None) -> list[str]:
    """`workbench ls`: a header and one line per (prefix, cells) row, two spaces between columns, fitted to
    ``width`` (None: every column at full width). ``prefix`` ("  └ " for a pipeline's stage run) goes before the
    run id and is never elided."""
    headers = tuple(n.upper() for n in NAMES)
    full = [(prefix + cells[RUN],) + cells[1:] for prefix, cells in rows]
    natural = natural_widths(full, headers)
    widths = natural if width is None else fit(natural, width + 2, 2)  # no gap after the last column
    out = []
    for prefix, cells in [("", headers)] + rows:
        shown = []
        for i, w in enumerate(widths):
            if w is None:
                continue
            if i == RUN:
                value = prefix + abbreviate(cells[i], w - len(prefix))
            else:
                value = abbreviate(cells[i], w)
            shown.append(value.ljust(w))
        out.append("  ".join(shown).rstrip())
    return out
