"""The training benchmark's measuring pieces: the paired ratio and its interval, the per-run steady speed, the CPU
reading of a process, and the callback cost it holds workbench to (the real callbacks in transformers' handler)."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

from benchmarks import bench_training as bt


def test_paired_ratio_is_the_geometric_mean_with_an_interval_that_narrows_with_agreement():
    ratio, words = bt._paired_ratio([2.0, 8.0], [1.0, 8.0])  # ratios 2 and 1
    assert math.isclose(ratio, math.sqrt(2))
    lo, hi = (float(x) for x in words.rsplit(" ", 1)[1].split("-"))
    assert lo < ratio < hi
    tight, words = bt._paired_ratio([1.01, 1.02, 1.01, 1.02], [1.0, 1.0, 1.0, 1.0])
    lo, hi = (float(x) for x in words.rsplit(" ", 1)[1].split("-"))
    assert 1.0 < lo < tight < hi < 1.03
    assert bt._paired_ratio([3.0], [2.0]) == (1.5, "one pair: no interval")


def test_median_gap_ignores_the_intervals_a_stall_stretches():
    times = [0.0, 0.1, 0.2, 0.3, 2.3, 2.4, 2.5]  # one 2 s stall (a checkpoint save, a neighbour)
    assert math.isclose(bt._median_gap(times), 0.1)
    assert math.isnan(bt._median_gap([1.0]))


def test_cpu_seconds_reads_a_live_process_and_none_once_it_is_gone():
    busy = subprocess.Popen([sys.executable, "-c", "import time\nt = time.process_time()\n"
                             "while time.process_time() - t < 0.3: pass\nimport sys; sys.stdin.read()"],
                            stdin=subprocess.PIPE)
    try:
        for _ in range(100):
            used = bt._cpu_seconds(busy.pid)
            if used is not None and used >= 0.25:
                break
            subprocess.run(["sleep", "0.05"])
        assert used is not None and used >= 0.25
    finally:
        busy.communicate(b"")
    assert bt._cpu_seconds(busy.pid) is None  # reaped
    assert bt._cpu_seconds(None) is None
    assert bt._delta({"cli": 1.0, "runner": 0.5}, {"cli": 1.25, "runner": 0.75}) == 0.5
    assert bt._delta({"cli": 1.0, "runner": None}, {"cli": 1.25, "runner": 0.75}) is None


def test_workbench_callbacks_cost_well_under_a_millisecond_a_step(tmp_path):
    # GRPO's three (RunLogger, StopControl, SampleLogger with a 16-completion batch) logging every step; a real
    # step of the tiny model takes ~150 ms on this CPU, so 1 ms would already be 0.7 %.
    per_step = bt.callback_cost(tmp_path, logging_steps=1, samples=True, steps=300)
    assert 0 <= per_step < 1e-3
    rows = [json.loads(line) for line in (tmp_path / "callbacks" / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 3 * 300 * 16  # the logger really wrote every batch (3 timed repeats)
    metrics = (tmp_path / "callbacks" / "metrics.jsonl").read_text().splitlines()
    assert len(metrics) == 3 * 300 and os.path.getsize(tmp_path / "callbacks" / "samples.jsonl") > 0
