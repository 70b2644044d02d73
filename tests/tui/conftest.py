"""Fake run directories written file by file (no training), and an app factory for Pilot tests."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import RECIPES


def make_run(runs_dir: Path, run_id: str, *, state: str = "completed", stage: str = "grpo", steps: int = 5,
             max_steps: int = 10, samples: bool = True, host: str | None = None, log_lines: int = 3,
             now: float | None = None) -> Path:
    """A run dir as the trainer leaves it: status.json, recipe.toml, metrics.jsonl, samples.jsonl, stdout.log.
    ``now`` fixes the clock its times are written around (for snapshots); default: the real time."""
    d = runs_dir / run_id
    d.mkdir(parents=True)
    now = time.time() if now is None else now
    status = {"state": state, "stage": stage, "name": run_id, "model": "builtin:tiny-lm", "created": now - 60,
              "started": now - 59, "host": host or "elsewhere-host"}
    if state not in ("queued", "running"):
        status.update(ended=now - 1, exit_code=0 if state == "completed" else 1)
    (d / "status.json").write_text(json.dumps(status))
    (d / "recipe.toml").write_text((RECIPES / f"{stage}-tiny.toml").read_text())
    rows = [{"event": "train_begin", "step": 0, "max_steps": max_steps, "time": now - 50}]
    for s in range(1, steps + 1):
        row = {"step": s, "time": now - 50 + s, "loss": 1.0 / s, "learning_rate": 1e-4, "grad_norm": 0.5}
        if stage == "grpo":
            row.update({"reward": s / 10, "rewards/format/mean": s / 20, "rewards/correctness/mean": s / 20,
                        "kl": 0.01 * s})
        else:
            row.update({"mean_token_accuracy": 0.1 * s})
        rows.append(row)
    if state == "completed":
        rows.append({"event": "train_end", "step": steps, "time": now - 2})
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if samples and stage == "grpo":
        out = []
        for s in range(1, steps + 1):
            for g in range(2):
                for i in range(2):
                    good = i == 0
                    completion = (f"<reasoning>step {s} thinks [bold]hard[/bold]</reasoning><answer>{s + g}</answer>"
                                  if good else f"junk {s}-{g} [red]x")
                    out.append({"step": s, "group": g, "index": g * 2 + i,
                                "prompt": f"system\nbe brief\nuser\nWhat is {s} + {g}?\nassistant\n",
                                "completion": completion,
                                "rewards": {"format": 1.0 if good else 0.0, "correctness": 2.0 if good else 0.0},
                                "reward": 3.0 if good else 0.0, "advantage": 0.7 if good else -0.7})
        (d / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in out))
    (d / "stdout.log").write_text("".join(f"log line {i}\n" for i in range(log_lines)) + "progress 10%\rprogress 100%\n")
    return d


@pytest.fixture
def app_factory(runs_dir):
    from workbench.tui.app import WorkbenchApp

    def make() -> WorkbenchApp:
        return WorkbenchApp(runs_dir)

    return make


@pytest.fixture(autouse=True)
def recent_files(tmp_path, monkeypatch) -> Path:
    """The recently used recipe files of each test live in its tmp_path (never in the shared cache)."""
    from workbench.core import recent

    path = tmp_path / "recent-recipes.json"
    monkeypatch.setattr(recent, "recent_path", lambda: path)
    return path
