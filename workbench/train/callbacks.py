"""Trainer callbacks that write the run directory (rank 0 only) and honour stop requests.

RunLogger     metrics.jsonl: one row per on_log ({"step", "time", "epoch", metrics...}, non-finite -> null) and
              lifecycle events (train_begin with max_steps, checkpoint, train_end); flushed per write.
StopControl   a stop.request file or SIGTERM ends training after the current step, with a checkpoint; reports
              the saving phase around every checkpoint.
Heartbeat     for a run without a runner (Slurm), the trainer's rank 0 touches the heartbeat itself.
SampleLogger  samples.jsonl: every completion of the latest generation batch at each log (GRPO/RLOO), with
              per-function rewards, the weighted total and the advantage.
"""
from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path

from transformers import TrainerCallback

from workbench.core.rundir import HEARTBEAT_EVERY, UNSET


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
    """Metric rows come from global rank 0 only; lifecycle events also from a multi-node member's reporter
    (``events``), so each machine's run directory tells how its own part went."""

    def __init__(self, rd, is_main: bool, on_step=None, events: bool | None = None):
        self.rows = is_main
        self.out = JsonlWriter(rd.metrics_path, is_main or bool(events))
        self.on_step = on_step

    def on_train_begin(self, args, state, control, **kw):
        self.out.write({"event": "train_begin", "step": state.global_step, "max_steps": state.max_steps,
                        "time": time.time()})

    def on_log(self, args, state, control, logs=None, **kw):
        if not self.rows:
            return
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
    """Also reports the ``saving`` phase: the Trainer saves right after on_step_end when should_save is set,
    and a stop never escalates past a trainer that says it is saving (core/lifecycle.py)."""

    def __init__(self, rd, report=None):
        self.rd = rd
        self.report = report or (lambda **kw: None)
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
        if control.should_save:  # before a raise: PPO saves its stop checkpoint while StopRequested unwinds
            self.report(phase="saving", saving_since=time.time())
        if self.stopped and self.raise_on_stop:
            raise StopRequested()
        return control

    def on_save(self, args, state, control, **kw):
        self.report(phase="training", saving_since=UNSET)


class Heartbeat:
    """Touches the run's heartbeat from a daemon thread (for runs with no runner to do it, e.g. under Slurm)."""

    def __init__(self, rd, every: float = HEARTBEAT_EVERY):
        self.rd, self.every = rd, every
        self._done = threading.Event()
        rd.touch_heartbeat()
        self._thread = threading.Thread(target=self._beat, name="workbench-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._done.wait(self.every):
            self.rd.touch_heartbeat()

    def stop(self) -> None:
        self._done.set()
        self.rd.touch_heartbeat()


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
