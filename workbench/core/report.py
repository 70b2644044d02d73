"""`workbench report RUN [RUN ...] -o DIR`: a run (or several, side by side) as a folder a colleague can open.

  DIR/index.html     one page: inline CSS, no script, nothing fetched from anywhere
  DIR/charts/*.png   one chart per headline metric (and per eval curve)

What the page holds, per run: the frozen recipe.toml, the command and environment (launch.json: argv, env delta,
host, python, generated config files), the status (state, start, end, duration, exit code, error), the final
metrics, eval results (RUN/evals/<name>.json, read defensively) and the best and worst completions of the latest
sampled steps (samples.jsonl). Charts: for one run, each headline metric of its stage with the raw values faint and
an EMA line; for several runs, the same metrics overlaid, one colour (and legend entry) per run.

Decisions:
- Images are separate PNG files referenced by relative path: send the folder (zipped); a chart can also be pasted
  alone into slides. ``embed=True`` (`--embed`) puts them into the page as data URIs instead: one file to mail.
- Everything taken from the run (recipe text, argv, prompts, completions, eval records) is HTML-escaped where it is
  written into the page (``workbench.core.report_html``); nothing from a run becomes markup or a URL.
- An existing DIR/index.html is replaced only when a workbench report wrote it (its generator tag), or with force.
- Light: matplotlib is imported (through ``workbench.core.report_charts``) only inside ``write_report``; this module
  and report_html never import it, nor torch & co.
"""
from __future__ import annotations

import base64
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import workbench
from workbench.core import supervisor
from workbench.core.atomic import write_text_atomic
from workbench.core.metrics import MetricsHistory, number, read_history
from workbench.core.problems import BadInput, Problem
from workbench.core.report_evals import Eval, read_evals
from workbench.core.rundir import RunDir, hostname
from workbench.core.samples import SampleIndex
from workbench.core.stages import all_headline_keys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

GENERATOR = "workbench report"
# Run colours: matplotlib's tab10, so a run's swatch on the page matches its lines in the charts.
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
          "#17becf")
# Headline metrics in page order; "*" matches one path segment or a suffix. Each stage logs only its own keys, so
# the keys present in a run are its stage's headline metrics.
HEADLINE = ("reward", "rewards/*/mean", "objective/rlhf_reward", "objective/scores", "best_reward", "kept_fraction",
            "loss", "loss/policy_avg", "loss/value_avg", "kl", "objective/kl", "rewards/accuracies",
            "rewards/margins", "accuracy", "margin", "mean_token_accuracy", "learning_rate", "eval/*", "eval_*")
HEADLINE += tuple(k for k in all_headline_keys() if k not in HEADLINE)  # a stage's declared headline (stages.py)
NOT_HEADLINE = re.compile(r"(_runtime|_per_second|/std)$")
TITLES = {"kl": "KL", "objective/kl": "KL (objective)", "rewards/accuracies": "preference accuracy",
          "rewards/margins": "preference margin", "mean_token_accuracy": "token accuracy",
          "learning_rate": "learning rate", "objective/rlhf_reward": "RLHF reward", "objective/scores": "scores",
          "loss/policy_avg": "policy loss", "loss/value_avg": "value loss", "best_reward": "best of K reward",
          "kept_fraction": "kept fraction"}
UNSMOOTHED = frozenset(("learning_rate",))  # schedules: an EMA would only draw them late
MISSING = "(not set)"
SAMPLE_STEPS = 3  # the latest sampled steps the completions are picked from
SAMPLE_EACH = 3  # best and worst completions shown per run
MAX_TEXT = 64 * 1024  # bytes read of a generated config file


@dataclass
class RunFacts:
    rd: RunDir
    label: str
    color: str
    status: dict
    launch: dict
    recipe: str | None
    history: MetricsHistory
    evals: list[Eval]
    samples: dict  # {"steps": [...], "best": [rows], "worst": [rows], "total": n}
    files: dict[str, str] = field(default_factory=dict)  # generated config files named in launch.json


@dataclass
class Line:
    """One run's points on a chart."""

    label: str
    color: str  # hex, the same as the run's swatch on the page
    xs: list[float]
    ys: list[float]


@dataclass
class Chart:
    """What one PNG shows (drawn by workbench.core.report_charts)."""

    title: str
    xlabel: str
    key: str  # the metric, or "evals/NAME.json CURVE"
    lines: list[Line] = field(default_factory=list)
    kind: str = "metric"  # metric: raw faint + EMA line per run; curve: points joined (eval curves)
    smooth: bool = True  # metric charts: False for a schedule (the learning rate), drawn as it is
    logx: bool = False
    file: str = ""  # the PNG's name in DIR/charts/ (set by plan_charts)


@dataclass
class ChartRef:
    key: str  # the metric (or "eval:NAME:CURVE")
    title: str
    src: str  # what <img src> gets: a relative path or a data URI
    labels: list[str]  # the runs drawn


# -- reading a run -------------------------------------------------------------------------------------------
def gather(rd: RunDir, label: str, color: str) -> RunFacts:
    launch = supervisor.launch_info(rd)
    files = {}
    for name in launch.get("files") or []:
        path = rd.path / str(name)
        if path.is_file() and path.resolve().parent == rd.path.resolve():
            with open(path, "rb") as f:
                files[str(name)] = f.read(MAX_TEXT).decode("utf-8", errors="replace")
    try:
        recipe = rd.recipe_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        recipe = None
    return RunFacts(rd, label, color, supervisor.status(rd), launch, recipe, read_history(rd.metrics_path),
                    read_evals(rd.path / "evals"), pick_samples(rd.samples_path), files)


def pick_samples(path: Path, steps: int = SAMPLE_STEPS, each: int = SAMPLE_EACH) -> dict:
    """The best and the worst completions (by total reward) of the latest ``steps`` sampled steps. A big file:
    only its newest part is indexed."""
    index = SampleIndex(path)
    index.read_new(budget_s=0)
    latest = index.steps[-steps:]
    rows = [r for s in latest for r in index.rows(s)]
    scored = sorted((r for r in rows if number(r.get("reward")) is not None), key=lambda r: -r["reward"])
    if not scored:
        return {"steps": latest, "best": rows[:each], "worst": [], "total": len(rows)}
    best = scored[:each]
    worst = [r for r in reversed(scored[each:])][:each]
    return {"steps": latest, "best": best, "worst": worst, "total": len(rows)}


def recipe_differences(texts: list[str | None]) -> list[tuple[str, list[str]]]:
    """(section.key, the value in each recipe) for every key whose value differs between the recipes or is missing
    from some; run.name is left out (it names the runs). An unreadable recipe is one whose every key is missing."""
    flat = []
    for text in texts:
        try:
            flat.append(flatten_toml(tomllib.loads(text or "")))
        except tomllib.TOMLDecodeError:
            flat.append({})
    keys = list(dict.fromkeys(k for d in flat for k in d if k != "run.name"))
    rows = []
    for key in keys:
        values = [d.get(key, MISSING) for d in flat]
        if any(v != values[0] or type(v) is not type(values[0]) for v in values[1:]):
            rows.append((key, [v if v is MISSING else toml_value(v) for v in values]))
    return rows


def flatten_toml(data: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in data.items():
        if isinstance(v, dict) and v:
            out.update(flatten_toml(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)


# -- choosing the charts -------------------------------------------------------------------------------------
def headline_keys(histories: list[MetricsHistory]) -> list[str]:
    """The headline metrics any of the runs logged, in HEADLINE order."""
    present = sorted({k for h in histories for k, s in h.series.items() if len(s)})
    out: list[str] = []
    for pattern in HEADLINE:
        if "*" not in pattern:
            matched = [pattern] if pattern in present else []
        else:
            one = "[^/]+" if pattern.endswith("/mean") else ".+"  # rewards/NAME/mean: NAME is one segment
            rx = re.compile("^" + re.escape(pattern).replace(r"\*", one) + "$")
            matched = [k for k in present if rx.match(k) and not NOT_HEADLINE.search(k)]
        out += [k for k in matched if k not in out]
    return out


def title_of(key: str) -> str:
    if key in TITLES:
        return TITLES[key]
    m = re.fullmatch(r"rewards/(.+)/mean", key)
    if m:
        return f"reward: {m.group(1)}"
    return key.replace("_", " ") if key.startswith("eval_") else key


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "chart"


def plan_charts(facts: list[RunFacts]) -> tuple[list[Chart], list[Chart]]:
    """The metric charts (one per headline metric any run logged, a line per run that has it) and the eval curve
    charts (one per eval and curve, a line per run), each with a unique file name."""
    used: set[str] = set()

    def named(chart: Chart, base: str) -> Chart:
        name = slug(base)
        while name in used:
            name += "_"
        used.add(name)
        chart.file = f"{name}.png"
        return chart

    metrics = []
    for key in headline_keys([f.history for f in facts]):
        lines = [Line(f.label, f.color, *f.history.points(key)) for f in facts if key in f.history.series]
        metrics.append(named(Chart(title_of(key), "step", key, [ln for ln in lines if ln.ys],
                                   smooth=key not in UNSMOOTHED), key))
    evals = []
    for ev_name, curve in dict.fromkeys((ev.name, c) for f in facts for ev in f.evals for c in ev.curves):
        lines = [Line(f.label, f.color, [x for x, _ in pts], [y for _, y in pts]) for f in facts
                 for ev in f.evals if ev.name == ev_name and (pts := ev.curves.get(curve))]
        ks = {x for line in lines for x in line.xs}
        logx = len(ks) > 2 and all(x >= 1 and x.is_integer() and not int(x) & (int(x) - 1) for x in ks)  # 1,2,4..
        evals.append(named(Chart(f"{ev_name}: {curve}", "k", f"evals/{ev_name}.json {curve}", lines, kind="curve",
                                 logx=logx), f"eval-{ev_name}-{curve}"))
    return metrics, evals


# -- writing -------------------------------------------------------------------------------------------------
def labels_for(runs: list[RunDir]) -> list[str]:
    """Each run's name when the names are unique among them, else its id."""
    names = [str(rd.read_status().get("name") or rd.id) for rd in runs]
    return names if len(set(names)) == len(names) else [rd.id for rd in runs]


def write_report(runs: list[RunDir | Path | str], out_dir: Path | str, *, embed: bool = False,
                 force: bool = False) -> Path:
    """Write DIR/index.html and DIR/charts/*.png for one run or several; returns the index.html path.
    Raises BadInput for a folder holding something else's index.html (unless force) or an unwritable folder."""
    from workbench.core import report_charts as rc  # matplotlib: only now
    from workbench.core.report_html import render_page

    rds = [r if isinstance(r, RunDir) else RunDir(Path(r)) for r in runs]
    if not rds:
        raise BadInput(Problem("", "", "no run to report on", "give one or more run ids"))
    out = Path(out_dir)
    index = out / "index.html"
    if index.is_file() and not force and GENERATOR not in index.read_text(encoding="utf-8", errors="replace")[:2000]:
        raise BadInput(Problem(str(index), "", "already exists and is not a workbench report",
                               "pass --force to replace it, or another -o folder"))
    charts_dir = out / "charts"
    try:
        charts_dir.mkdir(parents=True, exist_ok=True)
        for old in charts_dir.glob("*.png"):  # the previous report's charts
            old.unlink()
    except OSError as e:
        raise BadInput(Problem(str(out), "", f"cannot write the report: {e.strerror or e}", "pass another -o"))
    facts = [gather(rd, label, COLORS[i % len(COLORS)]) for i, (rd, label) in enumerate(zip(rds, labels_for(rds)))]
    metric_charts, eval_charts = plan_charts(facts)

    def emit(chart: Chart) -> ChartRef:
        path = charts_dir / chart.file
        rc.render(chart, path)
        src = ("data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()) if embed else \
            f"charts/{chart.file}"
        return ChartRef(chart.key, chart.title, src, [line.label for line in chart.lines])

    refs, eval_refs = [emit(c) for c in metric_charts], [emit(c) for c in eval_charts]
    meta = {"generator": f"{GENERATOR} {workbench.__version__}", "written": time.time(), "host": hostname(),
            "version": workbench.__version__, "recipe_diff": recipe_differences([f.recipe for f in facts])}
    try:
        write_text_atomic(index, render_page(facts, refs, eval_refs, meta))  # last: never names a missing file
    except OSError as e:
        raise BadInput(Problem(str(index), "", f"cannot write the report: {e.strerror or e}", "pass another -o"))
    if embed:  # the page holds the images: no folder beside it
        for old in charts_dir.glob("*.png"):
            old.unlink()
        try:
            charts_dir.rmdir()
        except OSError:
            pass
    return index
