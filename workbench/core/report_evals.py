"""Eval results for the report: RUN_DIR/evals/<name>.json (+ <name>.jsonl records), read defensively.

The files `workbench eval` writes are read through workbench.core.evals (its summary, its accuracy-vs-k curve, its
one-line description); any other JSON object still gives what can be read of it: its "summary" object (or its
own scalars), and curves from the shapes a k-curve comes in (``curve_points``). Nothing here raises on a bad file:
the problem becomes a line on the page. Light: no matplotlib, no torch.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from workbench.core.atomic import read_json
from workbench.core.metrics import number

EVAL_EXAMPLES = 3  # records of an eval's jsonl shown per eval
CURVE_FIELDS = ("curve", "k_curve", "curves")  # fields of an eval's JSON (or of its summary) read as curves
CURVE_NAMES = {"pass": "pass@k", "maj": "maj@k"}  # workbench.core.evals's curve points: {"k", "pass", "maj"}


@dataclass
class Eval:
    """One eval's results, as far as they could be read: RUN/evals/<name>.json (+ <name>.jsonl)."""

    name: str
    summary: dict[str, object] = field(default_factory=dict)  # flat: "a/b" for nested keys; scalars only
    curves: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # curve name -> (k, value) points
    records: int | None = None  # lines in <name>.jsonl
    examples: list[dict] = field(default_factory=list)  # a few of its records: wrong ones, then right ones
    about: str = ""  # what was evaluated on what, how (workbench.core.evals.describe)
    problem: str = ""


def read_evals(folder: Path) -> list[Eval]:
    """Every RUN/evals/<name>.json (and its <name>.jsonl records), read defensively: a file in an unexpected shape
    gives what can be read of it and a problem line, never an exception. The files ``workbench eval`` writes are
    read through workbench.core.evals (its summary, curve and description)."""
    if not folder.is_dir():
        return []
    evals = _evals_module()
    known = {str(r.get("name")): r for r in (evals.read_results(folder) if evals else [])}
    out = []
    for path in sorted(folder.glob("*.json")):
        ev = Eval(path.stem)
        data = known.get(path.stem) or read_json(path)
        if not isinstance(data, dict):
            ev.problem = "not a JSON object" if data is not None else "unreadable JSON"
        else:
            summary = data.get("summary")
            if not isinstance(summary, dict):  # no summary object: the file's own scalars are the summary
                summary = {k: v for k, v in data.items() if k not in CURVE_FIELDS}
            ev.summary = _ordered(flatten(summary), evals)
            for where in (data, summary):
                for key in CURVE_FIELDS:
                    if key in where:
                        ev.curves.update(curve_points(where[key], label=key))
            ev.curves = {CURVE_NAMES.get(k, k): v for k, v in ev.curves.items()}
            if evals and path.stem in known:
                try:
                    ev.about = evals.describe(data)
                except (KeyError, TypeError, ValueError):
                    pass
            if not ev.summary and not ev.curves:
                ev.problem = "no summary or curve found in it"
        _read_records(path.with_suffix(".jsonl"), ev)
        out.append(ev)
    return out


def _evals_module():
    try:
        from workbench.core import evals  # the eval command's own reader of its result files
    except ImportError:
        return None
    return evals if callable(getattr(evals, "read_results", None)) else None


def _ordered(summary: dict, evals) -> dict:
    """The eval's headline numbers first (workbench.core.evals.METRICS order), then the rest as they came."""
    first = [m[0] for m in getattr(evals, "METRICS", ())] if evals else []
    return {**{k: summary[k] for k in first if k in summary}, **summary}


def _read_records(path: Path, ev: Eval) -> None:
    """Count the records; keep the first few wrong ones and right ones (all first ones when none says)."""
    wrong, right, other = [], [], []
    try:
        with open(path, "rb") as f:
            count = 0
            for line in f:
                if not line.strip():
                    continue
                count += 1
                if len(wrong) >= EVAL_EXAMPLES and len(right) >= EVAL_EXAMPLES:
                    continue
                try:
                    rec = json.loads(line)
                except ValueError:
                    rec = {"record": line.decode("utf-8", errors="replace").strip()[:2000]}
                if not isinstance(rec, dict):
                    rec = {"record": rec}
                bucket = wrong if rec.get("correct") is False else right if rec.get("correct") is True else other
                if len(bucket) < EVAL_EXAMPLES:
                    bucket.append(rec)
        ev.records = count
    except OSError:
        return
    ev.examples = (wrong + right) or other


def flatten(d: dict, prefix: str = "", depth: int = 0) -> dict[str, object]:
    """Scalars of a nested dict, keys joined with '/'; lists and deeper nesting are left out."""
    out: dict[str, object] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and depth < 2:
            out.update(flatten(v, key + "/", depth + 1))
        elif v is None or isinstance(v, (str, int, float, bool)):
            out[key] = v
    return out


def _num(v) -> float | None:
    if isinstance(v, str):
        try:
            v = float(v)
        except ValueError:
            return None
    return number(v)


def _pairs(xs, ys) -> list[tuple[float, float]]:
    return sorted((x, y) for x, y in ((_num(a), _num(b)) for a, b in zip(xs, ys)) if x is not None and y is not None)


def curve_points(obj, label: str = "value", prefix: str = "", depth: int = 0) -> dict[str, list[tuple]]:
    """Curves (name -> sorted (k, value) points) from the shapes a k-curve comes in: {k: value}; [v1, v2, ...]
    (k = 1, 2, ...); [{"k": 1, "pass@k": 0.3}, ...]; {"k": [...], "pass@k": [...]}; or named curves of those
    ({"pass@k": {...}, "maj@k": {...}}). ``label`` names a curve whose shape carries no name of its own."""
    if isinstance(obj, list):
        if obj and all(_num(v) is not None for v in obj):
            return {label: _pairs(range(1, len(obj) + 1), obj)}
        rows = [r for r in obj if isinstance(r, dict)]
        if not rows:
            return {}
        xkey = "k" if "k" in rows[0] else next((k for k, v in rows[0].items() if _num(v) is not None), None)
        curves = {f"{prefix}{y}": _pairs([r.get(xkey) for r in rows], [r.get(y) for r in rows])
                  for y in rows[0] if y != xkey}
        return {k: v for k, v in curves.items() if v}
    if not isinstance(obj, dict) or not obj:
        return {}
    if all(_num(k) is not None and _num(v) is not None for k, v in obj.items()):
        return {label: _pairs(obj.keys(), obj.values())}
    if isinstance(obj.get("k"), list):
        curves = {f"{prefix}{y}": _pairs(obj["k"], ys) for y, ys in obj.items()
                  if y != "k" and isinstance(ys, list) and len(ys) == len(obj["k"])}
        return {k: v for k, v in curves.items() if v}
    out: dict[str, list[tuple]] = {}
    if depth < 2:
        for k, v in obj.items():
            out.update(curve_points(v, f"{prefix}{k}", f"{prefix}{k}/", depth + 1))
    return out
