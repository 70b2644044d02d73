"""Comparing runs: what their metrics share, their final values and evals, and how their recipes differ, as data.

The TUI's Compare screen (tui/screens/compare.py) draws it and ``workbench compare`` prints it; neither decides
anything of its own. Light: no textual, no torch/transformers/trl/peft/datasets import.

- Every run's metrics are folded once along each x axis: ``step``, ``time`` (seconds since the run's first row
  that has a time) and ``tokens`` (``num_tokens`` where the trainer logs it; a run that never logs it falls back
  to step, and says so). Each is a bounded ``MetricsHistory``, as in the monitor. A run resumed from a checkpoint
  forgets the rows of the superseded attempt on every axis (the x values at each ``checkpoint`` event are kept).
- A metrics file over ``SAMPLE_BYTES`` is read as an overview (its head and tail plus rows at evenly spaced
  offsets, metrics.overview_rows): curves are approximate, final values exact (they come from the tail), and
  ``RunMetrics.sampled`` says so. Rows appended later are read incrementally (``RunMetrics.poll``).
- Runs of different stages compare on the metric keys they all log (``shared_keys``); the default charts are the
  shared headline metrics plus the shared eval keys (``default_metrics``).
- Evals: ``RUN/evals/<name>.json``, read defensively (a missing folder, a torn or odd file is no eval): the
  numbers of its ``summary`` object (core/evals.py writes one: accuracy, pass@k, ...; the ``n_*`` counts are left
  out), else of its ``metrics``/``results``/``scores`` object, else of the object itself (one level of nesting
  flattened) become ``<name>/<key>``.
- The recipe diff flattens each frozen recipe.toml to ``section.key`` and keeps the keys whose values differ or
  are missing in some run (``MISSING``).
"""
from __future__ import annotations

import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from workbench.core import summary
from workbench.core.metrics import READ_CHUNK, JsonlTail, MetricsHistory, number, overview_rows
from workbench.core.rundir import LIVE_STATES, RunDir
from workbench.core.stages import all_headline_keys

AXES = ("step", "time", "tokens")
AXIS_NAMES = {"step": "step", "time": "time since the first row", "tokens": "tokens (num_tokens)"}
MISSING = "—"
SAMPLE_BYTES = 8 * 1024 * 1024  # a bigger metrics file is compared on sampled rows (three folds of 8 MB: ~1 s)
# Headline metrics, in chart order: the monitor's headline keys plus what other stages report as their own.
HEADLINE = (*summary.HEADLINE_KEYS, "mean_token_accuracy", "objective/rlhf_reward", "objective/scores",
            "rewards/margins", "margin", "best_reward")
HEADLINE += tuple(k for k in all_headline_keys() if k not in HEADLINE)  # a stage's declared headline (stages.py)
EVAL_PREFIXES = ("eval/", "eval_")
MAX_DEFAULT_CHARTS = 8
MAX_EVAL_FILE = 1024 * 1024
MAX_EVAL_KEYS = 64  # per run


def is_eval_key(key: str) -> bool:
    return key.startswith(EVAL_PREFIXES)


@dataclass
class RunMetrics:
    """One run as the comparison sees it."""

    id: str
    path: Path
    stage: str = "?"
    state: str = "?"  # as shown (display_state)
    live: bool = False  # queued or running: what it appends is read on
    recipe: dict[str, Any] = field(default_factory=dict)  # flattened: "section.key" -> value
    recipe_note: str = ""  # why there is no recipe, when there is none
    evals: dict[str, float] = field(default_factory=dict)
    axes: dict[str, MetricsHistory] = field(default_factory=lambda: {a: MetricsHistory() for a in AXES})
    sampled: bool = False
    t0: float | None = None  # time of the first row with a time
    t_last: float | None = None
    _tail: JsonlTail | None = field(default=None, repr=False)
    _marks: dict[int, tuple[float | None, float | None]] = field(default_factory=dict, repr=False)
    _last_x: tuple[float | None, float | None] = (None, None)  # time / tokens x of the newest metric row

    @property
    def steps(self) -> MetricsHistory:
        return self.axes["step"]

    @property
    def tokens_logged(self) -> bool:
        return bool(self.axes["tokens"].series)

    def history(self, axis: str) -> MetricsHistory:
        """The history charted along axis (tokens falls back to step for a run that logs no num_tokens)."""
        if axis == "tokens" and not self.tokens_logged:
            return self.steps
        return self.axes[axis]

    def keys(self) -> set[str]:
        return set(self.steps.series) - {"num_tokens"}

    @property
    def final(self) -> dict[str, float]:
        return self.steps.latest

    @property
    def duration(self) -> float | None:
        return None if self.t0 is None or self.t_last is None else self.t_last - self.t0

    # -- reading ---------------------------------------------------------------------------------------------
    def poll(self) -> bool:
        """Fold what was appended to metrics.jsonl since the last call; True if anything was."""
        if self._tail is None:
            self._tail = JsonlTail(RunDir(self.path).metrics_path)
        got = False
        while rows := self._tail.read_new(max_bytes=READ_CHUNK):
            self.add(rows)
            got = True
        return got

    def add(self, rows: list[dict]) -> None:
        """Fold rows into the three axes. Step keeps MetricsHistory's own event handling; time and tokens get
        metric rows with their x as the step, and the resume truncation done here."""
        timed: list[dict] = []
        counted: list[dict] = []

        def flush() -> None:
            for axis, batch in (("time", timed), ("tokens", counted)):
                if batch:
                    with self.axes[axis].lock:
                        self.axes[axis].add(batch)
                    batch.clear()

        for row in rows:
            t = number(row.get("time"))
            if t is not None:
                self.t0 = t if self.t0 is None else self.t0
                self.t_last = t if self.t_last is None else max(self.t_last, t)
            event, step = row.get("event"), number(row.get("step"))
            if event == "checkpoint" and step is not None:
                self._marks[int(step)] = self._last_x
            elif event == "resume" and step is not None:
                flush()
                for axis, x in zip(("time", "tokens"), self._marks.get(int(step), (None, None))):
                    if x is not None:
                        with self.axes[axis].lock:
                            self.axes[axis].truncate_after(x)
            if event or step is None:
                continue
            k = number(row.get("num_tokens"))
            tx = t - self.t0 if t is not None and self.t0 is not None else None
            if tx is not None:  # a copy with x as its step (dict() copies in C: a big file folds fast)
                timed.append(_with_step(row, tx))
            if k is not None:
                counted.append(_with_step(row, k))
            self._last_x = (tx if tx is not None else self._last_x[0], k if k is not None else self._last_x[1])
        flush()
        with self.steps.lock:
            self.steps.add(rows)


def _with_step(row: dict, x: float) -> dict:
    out = dict(row)
    out["step"] = x
    return out


def load_run(rd: RunDir, status: dict | None = None) -> RunMetrics:
    """Read one run for comparison: its status, frozen recipe, evals and metrics (sampled when big)."""
    st = status if status is not None else rd.read_status()
    run = RunMetrics(id=rd.id, path=rd.path, stage=str(st.get("stage") or "?"),
                     state=str(st.get("display_state") or st.get("state") or "?"),
                     live=st.get("state") in LIVE_STATES)
    run.recipe, run.recipe_note = read_recipe(rd.recipe_path)
    run.evals = read_evals(rd.path / "evals")
    tail = run._tail = JsonlTail(rd.metrics_path)
    try:
        size = rd.metrics_path.stat().st_size
    except OSError:
        size = 0
    if size > SAMPLE_BYTES:
        rows, size = overview_rows(rd.metrics_path)
        run.add(rows)
        run.sampled = True
        tail.offset, tail.size = _end_of_last_line(rd.metrics_path, size), size
        tail.inode = os.stat(rd.metrics_path).st_ino
    run.poll()
    return run


def _end_of_last_line(path: Path, size: int) -> int:
    """Offset just past the last newline before size (a torn last line is read again later, whole)."""
    with open(path, "rb") as f:
        start = max(0, size - 65536)
        f.seek(start)
        blob = f.read(size - start)
    return start + blob.rfind(b"\n") + 1


def read_recipe(path: Path) -> tuple[dict[str, Any], str]:
    """The frozen recipe flattened to "section.key" -> value, or ({}, why) when it cannot be read."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, "no recipe.toml"
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        return {}, f"recipe.toml unreadable: {type(e).__name__}"
    return flatten(data), ""


def flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def read_evals(folder: Path) -> dict[str, float]:
    """``<name>/<key>`` -> number for every RUN/evals/<name>.json that holds numbers; anything odd is skipped."""
    out: dict[str, float] = {}
    try:
        files = sorted(p for p in folder.iterdir() if p.suffix == ".json" and p.is_file())
    except OSError:
        return out
    for path in files:
        try:
            if path.stat().st_size > MAX_EVAL_FILE:
                continue
            obj = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        for key, value in _eval_numbers(obj):
            if len(out) >= MAX_EVAL_KEYS:
                return out
            out[f"{path.stem}/{key}"] = value
    return out


def _eval_numbers(obj: Any) -> list[tuple[str, float]]:
    if not isinstance(obj, dict):
        return []
    counts = False
    for inner in ("summary", "metrics", "results", "scores"):
        if isinstance(obj.get(inner), dict):
            obj, counts = obj[inner], inner == "summary"
            break
    out = []
    for key, value in obj.items():
        if counts and str(key).startswith("n_"):  # core.evals' summary: how many prompts, not how well
            continue
        if isinstance(value, dict):
            out += [(f"{key}/{k}", n) for k, v in value.items() if (n := number(v)) is not None]
        elif (n := number(value)) is not None:
            out.append((str(key), n))
    return out


# -- what to compare -----------------------------------------------------------------------------------------
def order_keys(keys) -> list[str]:
    """Headline metrics first (in HEADLINE order), then eval keys, then the rest, each alphabetically."""
    keys = set(keys)
    head = [k for k in HEADLINE if k in keys]
    rest = sorted(keys - set(head), key=lambda k: (not is_eval_key(k), k))
    return head + rest


def shared_keys(runs: list[RunMetrics]) -> list[str]:
    """The metric keys every run logs, ordered (order_keys)."""
    if not runs:
        return []
    common = set.intersection(*(r.keys() for r in runs))
    return order_keys(common)


def default_metrics(runs: list[RunMetrics]) -> list[str]:
    """What the Compare screen charts at first: the shared headline metrics and shared eval keys; failing those,
    the first few shared keys."""
    shared = shared_keys(runs)
    chosen = [k for k in shared if k in HEADLINE or is_eval_key(k)]
    return (chosen or shared[:4])[:MAX_DEFAULT_CHARTS]


def eval_keys(runs: list[RunMetrics]) -> list[str]:
    """Keys of RUN/evals/*.json in any run (a run without one shows MISSING)."""
    return sorted({k for r in runs for k in r.evals})


def final_table(runs: list[RunMetrics]) -> list[tuple[str, list[str]]]:
    """Rows of (label, one formatted cell per run): final step and duration, the final value of every shared
    metric, then the evals."""
    rows: list[tuple[str, list[str]]] = [
        ("step", [str(r.steps.step) if r.steps.rows else MISSING for r in runs]),
        ("duration", [summary.fmt_duration(r.duration) if r.duration is not None else MISSING for r in runs]),
    ]
    for key in shared_keys(runs):
        rows.append((key, [_num(r.final.get(key)) for r in runs]))
    for key in eval_keys(runs):
        rows.append((f"evals/{key}", [_num(r.evals.get(key)) for r in runs]))
    return rows


def _num(v: float | None) -> str:
    return MISSING if v is None else summary.fmt_num(v)


_ABSENT = object()


def recipe_diff(runs: list[RunMetrics]) -> list[tuple[str, list[str]]]:
    """(key, one formatted value per run) for every recipe key whose value differs, or is missing in some run."""
    keys: dict[str, None] = {}
    for r in runs:
        keys.update(dict.fromkeys(r.recipe))
    out = []
    for key in keys:
        values = [r.recipe.get(key, _ABSENT) for r in runs]
        if any(v != values[0] or type(v) is not type(values[0]) for v in values[1:]):
            out.append((key, [MISSING if v is _ABSENT else fmt_value(v) for v in values]))
    return out


def fmt_value(v: Any, limit: int = 60) -> str:
    """A recipe value the way TOML writes it (strings bare), shortened in the middle past ``limit``."""
    if isinstance(v, bool):
        text = "true" if v else "false"
    elif isinstance(v, str):
        text = v
    elif isinstance(v, float):
        text = repr(v) if math.isfinite(v) else str(v)
    elif isinstance(v, (int,)):
        text = str(v)
    else:
        try:
            text = json.dumps(v, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = str(v)
    return _elide(text.replace("\n", "\\n"), limit)


def short_labels(ids: list[str], limit: int = 18) -> list[str]:
    """Short, distinct names for runs in legends and column heads. A run id is a time stamp and the run's name
    (rundir.StatusDir.create): the names alone when they are distinct, else the ids less the words they all start
    with (the day of runs started the same day); past ``limit`` the words all of them end with go too, then the
    middle of a long one is elided; labels that still collide get their position."""
    names = [_STAMP.sub("", i, count=1) or i for i in ids]
    labels = names if len(set(names)) == len(names) else _drop_common(ids, head=True, tail=False)
    if any(len(label) > limit for label in labels):
        fewer = _drop_common(labels, head=True, tail=True)
        labels = fewer if len(set(fewer)) == len(fewer) else labels
    out = [_elide(label, limit) for label in labels]
    if len(set(out)) < len(out):
        out = [_elide(f"{n}:{label}", limit) for n, label in enumerate(labels, 1)]
    return out


_STAMP = re.compile(r"^\d{8}-\d{6}-")


def _drop_common(labels: list[str], head: bool, tail: bool) -> list[str]:
    """Drop the '-'-separated words every label starts (head) or ends (tail) with, keeping one word at least."""
    words = [label.split("-") for label in labels]
    if len(words) < 2:
        return list(labels)
    n = min(len(w) for w in words)
    a = 0
    while head and a < n - 1 and all(w[a] == words[0][a] for w in words):
        a += 1
    b = 0
    while tail and b < n - a - 1 and all(w[-1 - b] == words[0][-1 - b] for w in words):
        b += 1
    return ["-".join(w[a:len(w) - b]) for w in words]


def _elide(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    half = (limit - 1) // 2
    return text[:half] + "…" + text[len(text) - (limit - 1 - half):]


# -- text (workbench compare) --------------------------------------------------------------------------------
def format_text(runs: list[RunMetrics]) -> str:
    """The runs, the table of final values and evals, and the recipe diff, as aligned plain text."""
    labels = short_labels([r.id for r in runs])
    out = ["runs"]
    out += _aligned([[label, r.id, r.stage, r.state + "".join(f" ({n})" for n in (r.recipe_note,
                                                                                   "sampled" * r.sampled) if n)]
                     for label, r in zip(labels, runs)], indent="  ", right=())
    out += ["", *_aligned([["final values", *labels], *([k, *v] for k, v in final_table(runs))])]
    diff = recipe_diff(runs)
    if diff:
        out += ["", *_aligned([["recipe diff", *labels], *([k, *v] for k, v in diff)])]
    else:
        out += ["", "recipe diff: the recipes are the same"]
    return "\n".join(out)


def _aligned(rows: list[list[str]], indent: str = "", right=None) -> list[str]:
    """Columns two spaces apart; the first left-aligned, the others right-aligned unless ``right`` says which."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    right = range(1, len(widths)) if right is None else right
    return [indent + "  ".join(c.rjust(w) if i in right else c.ljust(w)
                               for i, (c, w) in enumerate(zip(r, widths))).rstrip() for r in rows]
