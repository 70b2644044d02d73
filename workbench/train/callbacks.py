"""Trainer callbacks that write the run directory (rank 0 only) and honour stop requests.

RunLogger     metrics.jsonl: one row per on_log ({"step", "time", "epoch", metrics...}, non-finite -> null) and
              lifecycle events (train_begin with max_steps, checkpoint, train_end); flushed per write.
StopControl   a stop.request file or SIGTERM ends training after the current step, with a checkpoint.
SampleLogger  samples.jsonl: every completion of the latest generation batch at each log (GRPO/RLOO), with
              per-function rewards, the weighted total and the advantage.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

from transformers import TrainerCallback


def _clean(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


class JsonlWriter:
    def __init__(self, path: Path, enabled: bool):
        self.enabled = enabled
        self.f = open(path, "a", encoding="utf-8") if enabled else None

    def write(self, row: dict) -> None:
        if self.f is None:
            return
        self.f.write(json.dumps({k: _clean(v) for k, v in row.items()}, default=str) + "\n")
        self.f.flush()

    def write_many(self, rows: list[dict]) -> None:
        if self.f is None or not rows:
            return
        self.f.write("".join(json.dumps(r, default=str) + "\n" for r in rows))
        self.f.flush()


class RunLogger(TrainerCallback):
    def __init__(self, rd, is_main: bool, on_step=None):
        self.out = JsonlWriter(rd.metrics_path, is_main)
        self.on_step = on_step

    def on_train_begin(self, args, state, control, **kw):
        self.out.write({"event": "train_begin", "step": state.global_step, "max_steps": state.max_steps,
                        "time": time.time()})

    def on_log(self, args, state, control, logs=None, **kw):
        row = {"step": state.global_step, "time": time.time(), "epoch": state.epoch}
        row.update(logs or {})
        self.out.write(row)

    def on_step_end(self, args, state, control, **kw):
        if self.on_step:
            self.on_step(state.global_step)

    def on_save(self, args, state, control, **kw):
        self.out.write({"event": "checkpoint", "step": state.global_step, "time": time.time(),
                        "path": str(Path(args.output_dir) / f"checkpoint-{state.global_step}")})

    def on_train_end(self, args, state, control, **kw):
        self.out.write({"event": "train_end", "step": state.global_step, "time": time.time()})


class StopRequested(Exception):
    """Raised where a trainer's loop ignores should_training_stop (trl's PPO)."""


class StopControl(TrainerCallback):
    def __init__(self, rd):
        self.rd = rd
        self.signalled = False
        self.stopped = False
        self.raise_on_stop = False
        self.last_step = 0

    def requested(self) -> bool:
        return self.signalled or self.rd.stop_requested()

    def on_step_end(self, args, state, control, **kw):
        self.last_step = state.global_step
        if self.requested():
            self.stopped = True
            control.should_training_stop = True
            control.should_save = True
            if self.raise_on_stop:
                raise StopRequested()
        return control


class SampleLogger(TrainerCallback):
    """Reads the trainer's latest generation batch (``trainer._logs``, kept by GRPO and RLOO) at each log."""

    def __init__(self, rd, is_main: bool, weights: list[float] | None, num_generations: int):
        self.out = JsonlWriter(rd.samples_path, is_main)
        self.weights = weights
        self.num_generations = max(1, num_generations)
        self.trainer = None
        self._last_key = None

    def on_log(self, args, state, control, **kw):
        logs = getattr(self.trainer, "_logs", None)
        if self.out.f is None or not logs or not logs.get("completion"):
            return
        prompts, completions = list(logs["prompt"]), list(logs["completion"])
        key = (len(completions), completions[0], completions[-1], prompts[0])
        if key == self._last_key:  # same generation batch logged twice (steps_per_generation > 1)
            return
        self._last_key = key
        per_func = {name: list(vals) for name, vals in logs["rewards"].items()}
        names = list(per_func)
        weights = self.weights or [1.0] * len(names)
        advantages = list(logs.get("advantages", []))
        rows = []
        for i, (p, c) in enumerate(zip(prompts, completions)):
            rewards = {n: _clean(per_func[n][i]) if i < len(per_func[n]) else None for n in names}
            total = sum(w * r for w, r in zip(weights, rewards.values()) if r is not None)
            rows.append({
                "step": state.global_step, "group": i // self.num_generations, "index": i,
                "prompt": p if isinstance(p, str) else json.dumps(p),
                "completion": c if isinstance(c, str) else (c[-1]["content"] if c else ""),
                "rewards": rewards, "reward": _clean(total),
                "advantage": _clean(advantages[i]) if i < len(advantages) else None,
            })
        self.out.write_many(rows)
