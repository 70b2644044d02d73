"""The [eval] section inside the training child: the held-out rows, trl's eval_dataset, and the periodic
generation eval of the policy being trained (what each key means: workbench/core/rules_eval.py).

``setup(ctx)`` runs after the dataset is loaded and before the stage's trainer is built:
  - the held-out rows: [eval] data (shaped like [data]: its system_prompt added, or else the system message the
    training conversations start with), or the last rows of [data], which are then not trained on;
  - ``ctx.eval_dataset`` for the trainers that evaluate a loss on rows of their own format (sft, pretrain,
    reward, dpo, kto), so trl's ``eval_strategy`` works;
  - a ``PeriodicEval`` callback when the held-out rows have prompts.

``PeriodicEval`` evaluates on global rank 0 at the start (``on_start``, a fresh run only), every ``every_steps``
steps and at the end (not after a stop request: the stop clock is running): the policy in eval mode without
gradients, then back in train mode. It writes one metrics.jsonl row per eval ({"step", "time", "eval/accuracy",
"eval/format_rate", "eval/pass@k", "eval/maj@k", "eval/mean_length", "eval/truncated_rate", "eval/prompts",
"eval/k"}) and every completion to samples.jsonl ("eval": true, rewards correctness/format). Under ZeRO-3 or
FSDP the weights are sharded, so the generation eval is skipped with a note.
"""
from __future__ import annotations

import time
from pathlib import Path

from transformers import TrainerCallback

from workbench.core import evals, rules_eval
from workbench.train.callbacks import JsonlWriter


def setup(ctx) -> None:
    recipe = ctx.recipe
    if "eval" not in recipe.data:
        return
    s = rules_eval.settings(recipe)
    if s["data"]:
        from workbench.train.evaluate import load_rows

        system = recipe.get("data.system_prompt", "") or training_system_prompt(ctx.dataset)
        rows = load_rows(s["data"], system)
        raw_columns = _raw_columns(s["data"], rows)
        if rules_eval.wires_trl_eval(recipe.stage, raw_columns):
            ctx.eval_dataset = rows
    else:
        n = len(ctx.dataset)
        held = rules_eval.holdout_count(n, s["max_prompts"])
        if held == 0:
            raise ValueError(f"[eval] has no data and [data] has {n} rows: too few to hold out eval rows")
        rows = ctx.dataset.select(range(n - held, n))
        ctx.dataset = ctx.dataset.select(range(n - held))
        ctx.note(f"[eval] holds out the last {held} of {n} rows of [data] (not trained on)")
        if rules_eval.wires_trl_eval(recipe.stage, None):
            ctx.eval_dataset = rows
    from workbench.train.evaluate import eval_items

    if recipe.stage in rules_eval.SCORER_STAGES:
        return  # a reward model generates nothing: trl's evaluation only
    items = eval_items(rows, s["max_prompts"])
    if not items:
        ctx.note("[eval]: the held-out rows have no prompts, so there is no generation eval")
        return
    if recipe.get("launch.zero_stage", 0) == 3 or ctx.train_kwargs.get("fsdp"):
        ctx.note("[eval]: the generation eval is skipped under ZeRO-3 / FSDP (sharded weights); "
                 "evaluate the final model with `workbench eval RUN --data FILE`")
        return
    ctx.callbacks.append(PeriodicEval(ctx, items, s))


def training_system_prompt(dataset) -> str:
    """The system prompt the first training row carries ("" when none)."""
    try:
        return evals.leading_system_prompt(dataset[0])
    except (IndexError, KeyError, TypeError):
        return ""


def _raw_columns(path: str, shaped) -> set[str]:
    """The eval file's own columns (shaping turns instruction rows into messages; the format check wants the file's)."""
    from workbench.core import datafile
    from workbench.core.problems import BadInput

    try:
        return set(datafile.peek(Path(path)).columns)
    except BadInput:  # a hub dataset: its shaped columns say enough
        return set(shaped.column_names)


class PeriodicEval(TrainerCallback):
    def __init__(self, ctx, items: list[dict], settings: dict):
        self.ctx, self.items, self.s = ctx, items, settings
        self.samples = JsonlWriter(ctx.rd.samples_path, ctx.is_main)
        self.last_step: int | None = None

    def on_train_begin(self, args, state, control, model=None, **kw):
        if self.s["on_start"] and state.global_step == 0:
            self.evaluate(state.global_step, model)

    def on_step_end(self, args, state, control, model=None, **kw):
        every = self.s["every_steps"]
        if every and state.global_step % every == 0:
            self.evaluate(state.global_step, model)

    def on_train_end(self, args, state, control, model=None, **kw):
        if not self.ctx.stop.requested():
            self.evaluate(state.global_step, model)

    def evaluate(self, step: int, model) -> None:
        if not self.ctx.is_main or model is None or step == self.last_step:
            return
        import torch

        from workbench.train import evaluate

        self.last_step = step
        policy = getattr(model, "module", model)  # DDP
        policy = getattr(policy, "policy", policy)  # PPO's policy-and-value wrapper
        training = policy.training
        started = time.time()
        try:
            with torch.no_grad():
                records = evaluate.run(policy, self.ctx.tokenizer, self.items, k=self.s["k"],
                                       temperature=self.s["temperature"], max_new_tokens=self.s["max_new_tokens"],
                                       batch_size=self.s["batch_size"])
        finally:
            policy.train(training)
        summary = evals.summarize(records, self.s["k"])
        self.ctx.logger.out.write({"step": step, "time": time.time(), **evals.metric_row(summary),
                                   "eval/seconds": round(time.time() - started, 3)})
        self.samples.write_many(evaluate.sample_rows(records, step))
