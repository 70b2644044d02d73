"""`make gpu-check` (benchmarks/gpu_check.py) on a machine without a GPU: one clear "no GPU" line, at once; and
its tokens-per-second arithmetic."""
from __future__ import annotations

import subprocess
import sys
import time

from benchmarks import gpu_check
from tests.conftest import ROOT


def test_no_gpu_exits_at_once_with_a_clear_line():
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check"], cwd=ROOT, capture_output=True, text=True,
                          timeout=30, env={"PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": ""})
    took = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("gpu-check: no GPU on this machine (") and "nothing measured" in proc.stdout
    assert len(proc.stdout.strip().splitlines()) == 1
    assert took < 5, f"took {took:.1f} s"


def test_tokens_per_second_leaves_out_the_warm_up():
    points = [(0.0, 0), (5.0, 100), (6.0, 200), (7.0, 300), (9.0, 700)]  # step 1 paid the start-up
    assert gpu_check.tokens_per_second(points) == (700 - 200) / (9.0 - 6.0)
    assert gpu_check.tokens_per_second(points[:2]) == 20.0  # too few steps: all of them
    assert gpu_check.tokens_per_second(points[:1]) is None
    lines = [(1.5, "{'loss': 2.0, 'num_tokens': 64.0, 'epoch': 0.1}\n"), (1.6, "other\n"),
             (2.5, "{'loss': 1.9, 'num_tokens': 128.0}\n"), (3.0, "{'train_runtime': 3.0}\n")]
    assert gpu_check.plain_points(lines) == [(1.5, 64.0), (2.5, 128.0)]
