"""Evaluation results: the math (pass@k, maj@k, the accuracy-vs-k curve), the summary of one eval, and reading
and printing the results a run keeps in ``RUN_DIR/evals/``. Light: no torch, no UI (the CLI, the TUI and the
generating child all use it).

An eval generates k completions for each held-out prompt. Each completion becomes a *record*:

  {"prompt_index", "sample", "prompt", "completion", "answer" (extracted <answer>, or None), "expected" (the
   dataset's answer, or None), "correct" (bool, or None when there is no expected answer), "formatted" (bool),
   "tokens" (completion length), "truncated" (hit max_new_tokens without </answer> or eos)}

``summarize`` turns the records into the numbers, each over the prompts it could be computed for:

  accuracy      mean over prompts of (correct samples / samples): the expected single-sample accuracy
  pass@k        unbiased estimator of Chen et al. 2021 (HumanEval): 1 - C(n-c, k) / C(n, k) per prompt, n samples
                of which c are correct; the curve evaluates it at k = 1, 2, 4, ... from the same n samples
  maj@k         self-consistency: the plurality answer of k samples is right; a tie for the top, or no sample
                with an answer, counts as wrong. From n samples, the mean over the n // k disjoint runs of k
                samples (so maj@1 = accuracy, and maj@n is the vote of all n). Answers vote together when they are the same
                text or the same number ("4" = "4.0", "1,000" = "1000"; "1/2" and "0.5" vote apart)
  format_rate   share of completions that are well formed <reasoning>...</reasoning><answer>...</answer>
  mean_length   completion tokens;  truncated_rate: share that ran into max_new_tokens unfinished

Result files: ``<dir>/<name>.json`` (the summary) and ``<dir>/<name>.jsonl`` (every record).
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

from workbench.core.summary import fmt_num

# The numbers an eval reports, in display order: summary key -> (table label, metrics.jsonl key).
METRICS = (
    ("accuracy", "accuracy", "eval/accuracy"),
    ("format_rate", "format", "eval/format_rate"),
    ("pass@k", "pass@k", "eval/pass@k"),
    ("maj@k", "maj@k", "eval/maj@k"),
    ("mean_length", "length", "eval/mean_length"),
    ("truncated_rate", "truncated", "eval/truncated_rate"),
)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n (c of them correct) is correct.

    >>> pass_at_k(4, 0, 2), pass_at_k(4, 4, 1), pass_at_k(4, 1, 1), round(pass_at_k(4, 1, 2), 4)
    (0.0, 1.0, 0.25, 0.5)
    """
    if not 1 <= k <= n:
        raise ValueError(f"pass@k needs 1 <= k <= n (k={k}, n={n})")
    if n - c < k:
        return 1.0
    # 1 - C(n-c, k) / C(n, k), as a product (no huge binomials): prod_{i=n-c+1}^{n} (1 - k / i)
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")


def vote_key(answer: str | None) -> str | None:
    """What a majority vote compares: a number's value, else the text with its spacing normalised."""
    if answer is None:
        return None
    text = " ".join(str(answer).split())
    plain = text.replace(",", "") if re.fullmatch(r"[-+]?\d{1,3}(,\d{3})+(\.\d*)?", text) else text
    if _NUMBER.fullmatch(plain):
        value = float(plain)
        if math.isfinite(value):
            return str(int(value)) if value == int(value) else repr(value)
    return text


def majority_correct(samples: list[dict]) -> bool:
    """maj@len(samples): is the plurality answer among these samples correct? Ties and no answers are wrong.

    >>> majority_correct([{"answer": "4", "correct": True}, {"answer": "4.0", "correct": True},
    ...                   {"answer": "5", "correct": False}])
    True
    >>> majority_correct([{"answer": "4", "correct": True}, {"answer": "5", "correct": False}])
    False
    """
    votes: dict[str, list[dict]] = {}
    for s in samples:
        key = vote_key(s.get("answer"))
        if key is not None:
            votes.setdefault(key, []).append(s)
    if not votes:
        return False
    ranked = sorted(votes.values(), key=len, reverse=True)
    if len(ranked) > 1 and len(ranked[0]) == len(ranked[1]):
        return False
    return any(bool(s.get("correct")) for s in ranked[0])


def curve_ks(k: int) -> list[int]:
    """1, 2, 4, ... below k, then k itself.

    >>> curve_ks(1), curve_ks(4), curve_ks(6)
    ([1], [1, 2, 4], [1, 2, 4, 6])
    """
    ks, j = [], 1
    while j < k:
        ks.append(j)
        j *= 2
    return ks + [k] if k >= 1 else []


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize(records: list[dict], k: int | None = None) -> dict:
    """The numbers of one eval from its records (see the module docstring). ``k`` defaults to the smallest number
    of samples any prompt has."""
    groups: dict[int, list[dict]] = {}
    for r in records:
        groups.setdefault(int(r["prompt_index"]), []).append(r)
    for g in groups.values():
        g.sort(key=lambda r: r.get("sample", 0))
    n_min = min((len(g) for g in groups.values()), default=0)
    k = min(k or n_min, n_min) if n_min else 0
    scored = [g for g in groups.values() if all(r.get("correct") is not None for r in g)]
    out: dict = {
        "n_prompts": len(groups), "n_scored": len(scored), "n_completions": len(records), "k": k,
        "accuracy": _mean([sum(bool(r["correct"]) for r in g) / len(g) for g in scored]),
        "format_rate": _mean([1.0 if r.get("formatted") else 0.0 for r in records]),
        "mean_length": _mean([float(r.get("tokens") or 0) for r in records]),
        "truncated_rate": _mean([1.0 if r.get("truncated") else 0.0 for r in records]),
        "pass@k": None, "maj@k": None, "curve": [],
    }
    if scored and k:
        for j in curve_ks(k):
            point = {"k": j,
                     "pass": _mean([pass_at_k(len(g), sum(bool(r["correct"]) for r in g), j) for g in scored]),
                     "maj": _mean([_mean([1.0 if majority_correct(g[i:i + j]) else 0.0
                                          for i in range(0, len(g) - j + 1, j)]) for g in scored])}
            out["curve"].append(point)
        out["pass@k"], out["maj@k"] = out["curve"][-1]["pass"], out["curve"][-1]["maj"]
    return out


def metric_row(summary: dict) -> dict:
    """The eval/* keys a training run logs to metrics.jsonl (None values left out)."""
    row = {key: summary.get(name) for name, _, key in METRICS}
    row.update({"eval/prompts": summary.get("n_prompts"), "eval/k": summary.get("k")})
    return {k: v for k, v in row.items() if v is not None}


def leading_system_prompt(row) -> str:
    """The system message a training row starts with (its ``messages``, or a chat ``prompt``), "" when none: the
    held-out prompts are asked as the model was trained (the training child's [eval] and `workbench eval`)."""
    if not isinstance(row, dict):
        return ""
    for column in ("messages", "prompt"):
        turns = row.get(column)
        if isinstance(turns, list) and turns and isinstance(turns[0], dict) and turns[0].get("role") == "system":
            return str(turns[0].get("content") or "")
    return ""


# -- result files ----------------------------------------------------------------------------------------------
def safe_name(text: str) -> str:
    """A file name part from a label: letters, digits, '.', '_', '-' (a hub id's '/' becomes '--')."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", text.replace("/", "--")).strip(".-")
    return name or "eval"


def read_results(folder: Path) -> list[dict]:
    """Every eval summary in a folder (``*.json`` with a "summary"), oldest first."""
    out = []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(obj, dict) and isinstance(obj.get("summary"), dict):
            obj.setdefault("name", path.stem)
            out.append(obj)
    return sorted(out, key=lambda o: o.get("time") or 0)


# -- text ------------------------------------------------------------------------------------------------------
def _rate(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def _value(name: str, v) -> str:
    return fmt_num(v) if name == "mean_length" else _rate(v)


def describe(result: dict) -> str:
    """One line: what was evaluated on what, how."""
    s = result["summary"]
    return (f"{result.get('target', '?')} on {Path(str(result.get('data', '?'))).name}: {s['n_prompts']} prompts "
            f"x {result.get('k', s['k'])} samples, temperature {fmt_num(result.get('temperature'))}, "
            f"max_new_tokens {result.get('max_new_tokens', '?')}")


def format_result(result: dict) -> str:
    """One eval, several lines: each number with the count it is over, then the accuracy-vs-k curve."""
    s = result["summary"]
    k = s["k"]
    over_prompts = f"({s['n_scored']} prompts with an answer)"
    lines = [describe(result),
             f"  accuracy       {_rate(s['accuracy'])}  {over_prompts}",
             f"  format rate    {_rate(s['format_rate'])}  ({s['n_completions']} completions)",
             f"  pass@{k:<9} {_rate(s['pass@k'])}  {over_prompts}",
             f"  maj@{k:<10} {_rate(s['maj@k'])}  {over_prompts}",
             f"  mean length    {fmt_num(s['mean_length'])} tokens  ({s['n_completions']} completions)",
             f"  truncated      {_rate(s['truncated_rate'])}  ({s['n_completions']} completions)"]
    if len(s.get("curve") or []) > 1:
        lines.append("  k curve        " + "   ".join(f"k={p['k']}: pass {_rate(p['pass'])} maj {_rate(p['maj'])}"
                                                      for p in s["curve"]))
    return "\n".join(lines)


def format_comparison(a: dict, b: dict) -> str:
    """Two evals of the same prompts side by side, with the difference (first minus second)."""
    sa, sb = a["summary"], b["summary"]
    la, lb = str(a.get("target", "model")), str(b.get("target", "baseline"))
    rows = [("", la, lb, "diff")]
    for name, label, _ in METRICS:
        va, vb = sa.get(name), sb.get(name)
        if name in ("pass@k", "maj@k"):
            label = name.replace("k", str(sa["k"]))
        diff = "-" if va is None or vb is None else f"{va - vb:+.3f}" if name != "mean_length" else \
            f"{va - vb:+.1f}"
        rows.append((label, _value(name, va), _value(name, vb), diff))
    ca = {p["k"]: p for p in sa.get("curve") or [] if p["k"] != sa["k"]}  # pass@K itself is a row above
    for p in sb.get("curve") or []:
        if p["k"] in ca:
            va, vb = ca[p["k"]]["pass"], p["pass"]
            rows.append((f"pass@{p['k']}", _rate(va), _rate(vb), "-" if va is None or vb is None else
                         f"{va - vb:+.3f}"))
    rows.append(("prompts", str(sa["n_prompts"]), str(sb["n_prompts"]), ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    body = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
            for r in rows]
    return "\n".join([describe(a)] + body)


def format_table(results: list[dict]) -> str:
    """A compact table of several evals (``workbench show RUN``)."""
    rows = [("EVAL", "MODEL", "PROMPTS", "K", "ACC", "FORMAT", "PASS@K", "MAJ@K", "LEN", "TRUNC")]
    for r in results:
        s = r["summary"]
        rows.append((str(r.get("name", "?")), str(r.get("target", "?")), str(s["n_prompts"]), str(s["k"]),
                     _rate(s["accuracy"]), _rate(s["format_rate"]), _rate(s["pass@k"]), _rate(s["maj@k"]),
                     fmt_num(s["mean_length"]), _rate(s["truncated_rate"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
