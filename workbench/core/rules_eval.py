"""The [eval] section: what it means for each stage, and its checks before launch. Light: no torch.

During training, an [eval] section runs the held-out generation eval (workbench/train/evaluate.py) on the policy
being trained, at the start (``on_start``), every ``every_steps`` steps and at the end; its numbers go to
metrics.jsonl as eval/* rows and its completions to samples.jsonl. It also gives trl its ``eval_dataset`` for the
stages whose trainer evaluates a loss on held-out rows of the training format (declared trl_eval), so
``eval_strategy = "steps"`` works there. best-of-k trains nothing ([eval] is refused); the reward stage's model
scores rather than generates, so there [eval] only feeds trl's evaluation.

Where the held-out rows come from:
  [eval] data = FILE   its prompts (a ``prompt`` column, or a conversation up to its last assistant turn) and
                       answers (an ``answer`` column, else the <answer> of the reference reply); when FILE is in
                       the stage's own format it is also trl's eval_dataset
  no data              the last rows of [data] are held out (``max_prompts`` of them, at most a fifth of the
                       rows) and not trained on; they serve both purposes

Checks (``check``, called from validate.py): [eval] data exists, parses and has prompts (and, for trl's eval,
the stage's format); enough rows to hold out; no answers, greedy k > 1, every_steps past max_steps and sharded
weights are warnings. eval_strategy without an [eval] section, or for a stage that gets no eval_dataset, is
rules.eval_needs_a_dataset's.
"""
from __future__ import annotations

from workbench.core import datafile
from workbench.core.problems import BadInput
from workbench.core.recipe import SECTIONS
from workbench.core.stages import STAGES, match_format, names

# From the stage declarations (core/stages.py): trainers that take an eval_dataset; stages that train a model that
# scores, not one that generates (trl's eval only).
TRL_EVAL_STAGES = names("trl_eval")
SCORER_STAGES = names("scorer")
PROMPT_COLUMNS = ("prompt", "messages", "instruction")
ANSWER_COLUMNS = ("answer", "completion", "chosen", "messages", "output")  # an answer, or a reference reply
HOLDOUT_SHARE = 5  # at most 1/5 of [data] is held out


def settings(recipe) -> dict:
    """The [eval] values with defaults filled in."""
    given = recipe.section("eval")
    return {k: given.get(k, spec.default) for k, spec in SECTIONS["eval"].items()}


def holdout_count(rows: int, max_prompts: int) -> int:
    """Rows of [data] held out when [eval] names no data: max_prompts (0: as many as allowed), at most a fifth."""
    cap = rows // HOLDOUT_SHARE
    return min(max_prompts, cap) if max_prompts else cap


def has_prompts(columns) -> bool:
    return any(c in columns for c in PROMPT_COLUMNS)


def wires_trl_eval(stage: str, eval_columns) -> bool:
    """Does the stage's trainer get an eval_dataset: its trainer takes one and the held-out rows have its format
    (``eval_columns`` None: the rows held out of [data], which do)."""
    known = STAGES.get(stage)
    if known is None or not known.trl_eval:
        return False
    return eval_columns is None or match_format(STAGES[stage], eval_columns) is not None


# -- checks ----------------------------------------------------------------------------------------------------
def check(c) -> None:
    """Problems of [eval] and of trl's eval settings, through the validate.Checker ``c`` (c.r, c.add)."""
    r, stage = c.r, STAGES.get(c.r.stage)
    strategy = r.get("train.eval_strategy", "no")
    wants_trl_eval = isinstance(strategy, str) and strategy != "no"
    has_section = "eval" in r.data
    if stage is None or not has_section:
        return  # eval_strategy without [eval], or for a stage without trl eval: rules.eval_needs_a_dataset
    if stage.config_class is None:
        c.add("eval", f"[eval] does not apply: stage {stage.name} trains nothing",
              "remove [eval]; evaluate a model with `workbench eval MODEL --data FILE`")
        return
    s = settings(r)
    if not isinstance(s["data"], str) or not isinstance(s["max_prompts"], int):
        return  # type problems are reported by validate.structure
    if stage.scorer:
        _scorer(c, s, stage, wants_trl_eval)
        return
    if s["data"]:
        columns = _eval_data_columns(c, s["data"])
        if columns is None:
            return
        trl_eval = wants_trl_eval and stage.trl_eval
        if trl_eval and not wires_trl_eval(stage.name, columns):
            wanted = " or ".join("{" + ", ".join(f.columns) + "}" for f in stage.formats)
            c.add("eval.data", f"trl's evaluation (eval_strategy = \"{strategy}\") needs [eval] data in stage "
                  f"{stage.name}'s format {wanted}; it has columns {sorted(columns)}",
                  "give a held-out file in that format, or omit [eval] data to hold out the last rows of [data]")
        elif not has_prompts(columns) and not trl_eval:
            c.add("eval.data", f"[eval] data has no prompts to generate from (columns {sorted(columns)})",
                  "give rows with a 'prompt' (and an 'answer') column, e.g. assets/data/arith-heldout.jsonl")
        elif has_prompts(columns) and not any(col in columns for col in ANSWER_COLUMNS):
            c.add("eval.data", "[eval] data has no 'answer' column (nor reference replies): only the format rate "
                  "and lengths are measured, no accuracy", "add an 'answer' column", severity="warning")
    else:
        _holdout(c, s, stage, wants_trl_eval)
    _settings_warnings(c, s)


def _scorer(c, s: dict, stage, wants_trl_eval: bool) -> None:
    """A reward model generates nothing: [eval] only gives trl its eval_dataset (rows in the stage's format)."""
    if s["data"]:
        columns = _eval_data_columns(c, s["data"])
        if columns is not None and not wires_trl_eval(stage.name, columns):
            wanted = " or ".join("{" + ", ".join(f.columns) + "}" for f in stage.formats)
            c.add("eval.data", f"stage {stage.name} trains a scorer, which generates nothing: [eval] gives trl its "
                  f"eval_dataset, so [eval] data must be in the stage's format {wanted}; it has columns "
                  f"{sorted(columns)}", "give held-out pairs, or omit [eval] data to hold out the last rows of [data]")
            return
    if not wants_trl_eval:
        c.add("eval", f"stage {stage.name} trains a scorer, which generates nothing: [eval] only gives trl's "
              'evaluation its held-out rows, and eval_strategy is "no"', 'set train.eval_strategy = "steps" '
              "(and eval_steps), or remove [eval]", severity="warning")


def _eval_data_columns(c, raw: str) -> set[str] | None:
    if not c.check_files:
        return None
    path = c.r.resolve_path(raw)
    if not path.exists():
        c.add("eval.data", f"eval data file '{raw}' not found (looked at {path})",
              "relative paths are resolved against the recipe's folder, then the current one")
        return None
    try:
        return set(datafile.peek(path, key="eval.data").columns)
    except BadInput as e:
        for p in e.problems:
            c.add("eval.data", f"{p.file}: {p.message}" + (f" (line {p.line})" if p.line else ""), p.hint)
        return None


def _holdout(c, s: dict, stage, wants_trl_eval: bool) -> None:
    """No [eval] data: the last rows of [data] are held out."""
    raw = c.r.get("data.path")
    if not c.check_files or not isinstance(raw, str) or not raw or not c.r.resolve_path(raw).is_file():
        return  # a missing or hub dataset: [data]'s own checks speak (a hub dataset is split at run time)
    try:
        peek = datafile.peek(c.r.resolve_path(raw))
    except BadInput:
        return  # reported by the [data] checks
    n = holdout_count(peek.num_rows, s["max_prompts"])
    if peek.complete and n == 0:
        c.add("eval", f"[eval] has no data, and [data] has {peek.num_rows} rows: too few to hold out a fifth",
              '[eval] data = "held-out.jsonl" (prompts and answers)')
    elif not has_prompts(peek.columns) and not (wants_trl_eval and stage.trl_eval):
        c.add("eval", f"[eval] has nothing to evaluate: the rows held out of [data] have no prompts to generate "
              f"from (columns {sorted(peek.columns)})", '[eval] data = "held-out.jsonl" with prompt and answer '
              'columns (for pretrain text: eval_strategy = "steps" measures the held-out loss)')


def _settings_warnings(c, s: dict) -> None:
    k, temperature = s["k"], s["temperature"]
    if isinstance(k, int) and k > 1 and temperature == 0:
        c.add("eval.temperature", f"temperature 0 is greedy: the k = {k} samples per prompt are the same, so "
              "pass@k = maj@k = accuracy", "set temperature > 0 (e.g. 0.7), or k = 1", severity="warning")
    every, max_steps = s["every_steps"], c.r.get("train.max_steps")
    if isinstance(every, int) and isinstance(max_steps, int) and 0 < max_steps < every:
        c.add("eval.every_steps", f"every_steps {every} is beyond max_steps {max_steps}: the eval runs only at the "
              "start and the end", f"set every_steps <= {max_steps}", severity="warning")
    if c.r.get("launch.zero_stage", 0) == 3 or c.r.get("train.fsdp"):
        c.add("eval", "the generation eval is skipped under ZeRO-3 / FSDP (the weights are sharded across "
              "processes); trl's eval_strategy still works", "evaluate the final model with `workbench eval RUN`",
              severity="warning")
