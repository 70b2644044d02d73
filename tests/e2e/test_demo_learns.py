"""The shipped demo pipeline (pretrain -> SFT -> GRPO on arithmetic) visibly learns on a CPU (about 3 min)."""
from __future__ import annotations

import json
import statistics
import subprocess

import pytest

from tests.conftest import RECIPES, workbench_cmd
from workbench.core.rundir import RunDir

pytestmark = pytest.mark.e2e


def test_demo_pipeline_learns(runs_dir):
    proc = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "pipeline", str(RECIPES / "demo")),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = {RunDir(p).read_status()["stage"]: RunDir(p) for p in runs_dir.iterdir() if RunDir(p).exists()}
    assert set(runs) == {"pretrain", "sft", "grpo"}
    logs = [json.loads(line) for line in runs["grpo"].metrics_path.read_text().splitlines()]
    logs = [r for r in logs if "rewards/correctness/mean" in r]
    fifth = len(logs) // 5

    def mean(key, rows):
        return statistics.mean(r[key] for r in rows)

    first, last = logs[:fifth], logs[-fifth:]
    assert mean("rewards/format/mean", first) > 0.9, "after SFT the format is (nearly) always right"
    assert mean("rewards/format/mean", last) > 0.9
    assert mean("rewards/correctness/mean", last) > mean("rewards/correctness/mean", first) + 0.1, \
        "GRPO raises the correctness reward"
