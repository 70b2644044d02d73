"""What stopping a live run costs, in the words of the confirmation the TUI asks before a stop (runs list, monitor):
the run's latest step, its last complete checkpoint, the steps since then, and whether a checkpoint is written
at the stop.

UI-free and cheap: the latest step is the last one metrics.jsonl logged (summary.run_summary reads its tail); the
last complete checkpoint is the one a resume would start from (lifecycle.resume_checkpoint). Every stage with a
trl trainer writes a checkpoint when it honours a stop (train/callbacks.py StopControl sets should_save, whatever
the recipe's save_strategy); best-of-k has no trainer and keeps no checkpoints.
"""
from __future__ import annotations

from dataclasses import dataclass

from workbench.core import lifecycle, summary
from workbench.core.rundir import RunDir
from workbench.core.stages import STAGES


@dataclass(frozen=True)
class StopCost:
    step: int  # the latest logged step
    max_steps: int | None
    checkpoint: int | None  # the step of the last complete checkpoint
    saves_at_stop: bool
    phase: str = ""
    stage: str = ""

    @property
    def since_checkpoint(self) -> int:
        return max(0, self.step - (self.checkpoint or 0))


def stop_cost(rd: RunDir, st: dict | None = None) -> StopCost:
    st = rd.read_status() if st is None else st
    s = summary.run_summary(rd.metrics_path)
    try:
        ckpt, _skipped = lifecycle.resume_checkpoint(rd)
    except OSError:
        ckpt = None
    stage = str(st.get("stage") or "")
    known = STAGES.get(stage)
    return StopCost(step=int(s["step"] or 0), max_steps=s["max_steps"],
                    checkpoint=int(ckpt.name.rsplit("-", 1)[-1]) if ckpt is not None else None,
                    saves_at_stop=known is None or known.config_class is not None, phase=str(st.get("phase") or ""),
                    stage=stage)


def _steps(n: int) -> str:
    return f"{n} step{'s' * (n != 1)}"


def describe(cost: StopCost) -> str:
    """Two or three sentences: where the run is, its last checkpoint, and what the stop keeps or loses."""
    at = f"Step {cost.step}" + (f" of {cost.max_steps}" if cost.max_steps else "")
    if cost.step == 0 and cost.checkpoint is None:
        return f"It has not logged a training step yet{f' ({cost.phase})' if cost.phase else ''}: nothing is lost."
    since = cost.since_checkpoint
    if cost.checkpoint is None:
        where = f"{at}; no checkpoint yet."
    else:
        where = f"{at}; last complete checkpoint: step {cost.checkpoint}" + (
            f", {_steps(since)} ago." if since else " (nothing since).")
    if cost.saves_at_stop:
        kept = "so nothing is lost" if not since else (
            f"so the {_steps(since)} are kept" if cost.checkpoint is not None else f"so all {_steps(since)} are kept")
        text = f"{where}\nA checkpoint is written at the stop (after the current step), {kept}: r resumes from it."
        if cost.phase == "saving":
            text += "\nIt is saving a checkpoint now; the stop waits for it."
        return text
    if cost.checkpoint is None:
        lost = f"No checkpoint yet: all {_steps(cost.step)} will be lost"
    else:
        lost = f"The {_steps(since)} since then will be lost" if since else "Nothing since then is lost"
    note = " (what it kept so far is written to dataset.jsonl)" if cost.stage == "best-of-k" else ""
    return f"{at}.\n{lost}{note}." if cost.checkpoint is None else f"{where}\n{lost}{note}."


def stop_question(rd: RunDir, st: dict | None = None) -> str:
    return f"Stop run {rd.id}?\n{describe(stop_cost(rd, st))}"
