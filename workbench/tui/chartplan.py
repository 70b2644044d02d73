"""Which charts the monitor shows for a run, what each is called, and what an empty one says. UI-free (no Textual):
the monitor (tui/screens/monitor.py) lays the plan out as a grid of MetricChart widgets.

The plan: the stage's own charts first (its declaration's ``charts`` in core/stages.py: reward, loss, KL for GRPO;
loss, token accuracy, learning rate for SFT, ...; DEFAULT_CHARTS for a stage the catalogue does not know), the
held-out eval chart when the recipe has an [eval] section or eval/* rows arrive, then one chart per other key the
run logs (grad_norm, entropy, ... first, the rest by name). A chart may offer more series than it shows: the reward
chart shows the total reward and offers each reward function's rewards/<f>/mean (the series picker turns them on).
No key is on two charts, and no chart shows a key twice.

An empty chart says why: waiting for the first log (logging_steps), KL only logged when beta > 0, the eval not
run yet ([eval] every_steps), or the key not logged by this run.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from workbench.core.metrics import MetricsHistory
from workbench.core.stages import STAGES

DEFAULT_CHARTS = [("loss", ["loss"]), ("accuracy", ["rewards/accuracies|accuracy|mean_token_accuracy"]),
                  ("learning rate", ["learning_rate"])]
# The held-out generation eval ([eval] in the recipe) of any stage.
EVAL_CHART = ("held-out eval", ["eval/accuracy", "eval/format_rate", "eval/pass@k", "eval/maj@k"])
# Keys that get no chart of their own: trainer summaries logged once at the end, and the eval's constants.
NO_CHART = frozenset({"train_runtime", "train_loss", "train_samples_per_second", "train_steps_per_second",
                      "total_flos", "eval/prompts", "eval/k"})
FIRST = ("grad_norm", "learning_rate", "entropy", "reward_std", "mean_token_accuracy", "completions/mean_length",
         "frac_reward_zero_std", "num_tokens")  # the other keys' charts in this order, then by name


@dataclass
class ChartSpec:
    """One chart: ``keys`` are shown at first (each entry may be alternatives, "kl|objective/kl"); ``options``
    are offered by the series picker too, off until picked."""

    id: str  # stable across replans: the title of a stage chart, "key:<metric>" for a one-metric chart
    title: str
    keys: list[str]
    options: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RecipeFacts:
    """What the empty-chart reasons need from the run's recipe."""

    beta: float | None = None  # None: neither the recipe nor trl's default says
    logging_steps: int = 1
    eval_every: int | None = None  # None: no [eval] section; 0: only at the start and the end

    @classmethod
    def of(cls, recipe_path: Path, stage: str) -> RecipeFacts:
        try:
            data = tomllib.loads(Path(recipe_path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        train = data.get("train") if isinstance(data.get("train"), dict) else {}
        known = STAGES.get(stage)
        beta = train.get("beta", known.trl_defaults.get("beta") if known else None)  # trl's default if unset
        logging = train.get("logging_steps", 1)
        ev = data.get("eval")
        every = ev.get("every_steps", 0) if isinstance(ev, dict) else None
        return cls(beta=float(beta) if isinstance(beta, (int, float)) else None,
                   logging_steps=logging if isinstance(logging, int) and logging > 0 else 1,
                   eval_every=every if isinstance(every, int) else (0 if isinstance(ev, dict) else None))


def _alts(entry: str) -> list[str]:
    return entry.split("|")


def stage_specs(stage: str) -> list[ChartSpec]:
    known = STAGES.get(stage)
    charts = [(c.title, c.keys) for c in known.charts] if known is not None and known.charts else DEFAULT_CHARTS
    return [ChartSpec(title, title, list(keys)) for title, keys in charts]


def plan(stage: str, history: MetricsHistory, facts: RecipeFacts | None = None) -> list[ChartSpec]:
    """Every chart for this run, in grid order (see the module docstring)."""
    keys = history.keys()
    specs = stage_specs(stage)
    for spec in specs:
        if spec.keys == ["reward"]:  # the per-function rewards: offered, off until picked
            spec.options = sorted(k for k in keys if k.startswith("rewards/") and k.endswith("/mean"))
    if (facts is not None and facts.eval_every is not None) or any(k.startswith("eval/") for k in keys):
        specs.append(ChartSpec("eval", EVAL_CHART[0], list(EVAL_CHART[1])))
    taken = {k for s in specs for e in s.keys + s.options for k in _alts(e)}
    rest = [k for k in keys if k not in taken and k not in NO_CHART]
    rest.sort(key=lambda k: (FIRST.index(k) if k in FIRST else len(FIRST), k))
    specs += [ChartSpec(f"key:{k}", k, [k]) for k in rest]
    return specs


def present(history: MetricsHistory | None, entries: list[str]) -> list[str]:
    """The first present key of each entry, each key once."""
    if history is None:
        return []
    out: list[str] = []
    for entry in entries:
        key = next((k for k in _alts(entry) if k in history.series), None)
        if key is not None and key not in out:
            out.append(key)
    return out


def labels(title: str, keys: list[str]) -> list[str]:
    """Legend labels that fit: rewards/<f>/mean -> <f>, the key a chart is named after -> "total" beside
    others, other keys as they are (the legend shortens what still does not fit)."""
    out = []
    for k in keys:
        parts = k.split("/")
        if len(parts) == 3 and parts[0] == "rewards" and parts[2] == "mean":
            out.append(parts[1])
        elif k == title and len(keys) > 1:
            out.append("total")
        elif k.startswith("eval/") and title == EVAL_CHART[0]:
            out.append(k[len("eval/"):])
        else:
            out.append(k)
    return out


def empty_reason(spec: ChartSpec, stage: str, history: MetricsHistory, facts: RecipeFacts, live: bool) -> str:
    """Why a chart has nothing to draw, in a few words."""
    if not history.rows:
        if live:
            return f"waiting for the first log (logging_steps = {facts.logging_steps})"
        return "this run logged no metrics"
    wanted = [k for e in spec.keys for k in _alts(e)]
    if spec.id == "eval":
        if facts.eval_every is None:
            return "no eval: the recipe has no [eval] section"
        when = f"[eval] runs every {facts.eval_every} steps" if facts.eval_every else "[eval] runs at the start and the end"
        return f"no eval yet: {when}" if live else f"no eval rows: {when}"
    if any(k in ("kl", "objective/kl") for k in wanted) and facts.beta == 0:
        return "KL is logged only when beta > 0 (this recipe: beta = 0)"
    names = ", ".join(wanted)
    return f"not logged yet: {names}" if live else f"this run logged no {names}"
