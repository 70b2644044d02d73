"""Big runs: open a run with 1,000,000 metric rows x 50 keys and 200,000 sampled completions in the TUI.

The run is generated once into the scratch dir (about 2.2 GB of metrics, 0.2 GB of samples) in the shape the
trainer writes. A child process runs the real app headless (Textual's run_test, 160x48), opens the run's
monitor and reports when the charts have drawn data, when the completions viewer has drawn the newest step
after pressing 2, when the exact history has caught up, and its memory. Twice: the first open of the file
(no saved view: a sampled overview draws first) and a reopen (the saved view).
"""
from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import PY, ROOT, Context, Result

ROWS, KEYS, SAMPLES, PER_STEP = 1_000_000, 50, 200_000, 16
BASE_KEYS = ["loss", "grad_norm", "learning_rate", "reward", "reward_std", "kl", "entropy",
             "frac_reward_zero_std", "completions/mean_length", "completions/min_length",
             "completions/max_length", "completions/clipped_ratio", "completions/mean_terminated_length",
             "clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean", "num_tokens",
             "rewards/format/mean", "rewards/format/std", "rewards/correctness/mean", "rewards/correctness/std"]
METRIC_KEYS = BASE_KEYS + [f"custom/metric_{i:02d}" for i in range(KEYS - len(BASE_KEYS))]


def generate(run: Path, rows: int = ROWS, samples: int = SAMPLES) -> None:
    """A finished GRPO run dir with ``rows`` metric rows and ``samples`` completions (16 per logged step)."""
    from workbench.core.rundir import RunDir

    if (run / "generated.ok").exists():
        return
    run.parent.mkdir(parents=True, exist_ok=True)
    rd = RunDir(run)
    run.mkdir(exist_ok=True)
    rnd = random.Random(0)
    t0 = 1.76e9
    (run / "recipe.toml").write_text('[run]\nname = "big"\nstage = "grpo"\n[model]\npath = "builtin:tiny-lm"\n')
    (run / "launch.json").write_text(json.dumps({"argv": [PY, "-m", "workbench.train", str(run)]}))
    rd.write_status(state="completed", stage="grpo", name="big", model="builtin:tiny-lm", created=t0, started=t0,
                    ended=t0 + rows * 0.5, exit_code=0, runner_pid=None)
    with open(rd.metrics_path, "w") as f:
        f.write(json.dumps({"event": "train_begin", "step": 0, "max_steps": rows, "time": t0}) + "\n")
        buf = []
        for s in range(1, rows + 1):
            row = {"step": s, "time": t0 + s * 0.5, "epoch": s / rows}
            trend = s / rows
            for k in METRIC_KEYS:
                row[k] = rnd.random() * (1 - trend) + trend
            if s == rows * 7 // 9:
                row["loss"] = 40.0  # one spike the charts must show
            buf.append(json.dumps(row))
            if len(buf) == 10_000:
                f.write("\n".join(buf) + "\n")
                buf = []
        f.write("\n".join(buf) + ("\n" if buf else ""))
        f.write(json.dumps({"event": "train_end", "step": rows, "time": t0 + rows * 0.5}) + "\n")
    steps = samples // PER_STEP
    every = max(1, rows // steps)
    with open(rd.samples_path, "w") as f:
        for k in range(steps):
            step = (k + 1) * every
            lines = []
            for i in range(PER_STEP):
                a, b = rnd.randrange(10), rnd.randrange(10)
                guess = a + b + (0 if rnd.random() < 0.7 else 1)
                ok = guess == a + b
                lines.append(json.dumps({
                    "step": step, "group": i // 8, "index": i,
                    "prompt": f"system\nRespond in the format <reasoning>...</reasoning><answer>...</answer>\n"
                              f"user\nWhat is {a} + {b}?\nassistant\n",
                    "completion": f"<reasoning>{a} plus {b} is {guess}, adding the ones.</reasoning>"
                                  f"<answer>{guess}</answer>",
                    "rewards": {"format": 1.0, "correctness": 2.0 if ok else 0.0}, "reward": 3.0 if ok else 1.0,
                    "advantage": rnd.uniform(-1, 1)}))
            f.write("\n".join(lines) + "\n")
    (run / "generated.ok").write_text("")


def probe(runs: Path, run: Path, fresh: bool, ctx: Context) -> dict:
    argv = [PY, "-m", "benchmarks.probe_monitor", str(runs), str(run)] + (["--fresh"] if fresh else [])
    p = subprocess.run(argv, cwd=ROOT, env=ctx.env, capture_output=True, text=True, timeout=900)
    if p.returncode != 0:
        raise RuntimeError(f"probe failed ({p.returncode}):\n{p.stdout[-3000:]}{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def run(ctx: Context) -> list[Result]:
    rows, samples = (100_000, 20_000) if ctx.quick else (ROWS, SAMPLES)
    runs = ctx.work / ("bigrun-quick" if ctx.quick else "bigrun")
    run_dir = runs / "20260101-000000-big"
    t0 = time.perf_counter()
    generate(run_dir, rows, samples)
    gen = time.perf_counter() - t0
    size = (run_dir / "metrics.jsonl").stat().st_size / 1e9
    ssize = (run_dir / "samples.jsonl").stat().st_size / 1e9
    first = probe(runs, run_dir, True, ctx)
    again = probe(runs, run_dir, False, ctx)
    what = f"{rows:,} rows x {KEYS} keys ({size:.2f} GB), {samples:,} samples ({ssize:.2f} GB)"
    if gen > 1:
        print(f"   generated {what} in {gen:.0f} s", file=sys.stderr)
    b = "bigrun"
    return [
        Result(b, "first open: charts drawn", first["charts"], "s", 1.0,
               f"{what}; sampled overview first; spike seen: {first['spike']}"),
        Result(b, "first open: completions drawn (after 2)", first["samples"], "s", 1.0,
               f"newest of {first['steps']:,} steps, {first['shown']} rows parsed"),
        Result(b, "first open: exact charts (caught up)", first["exact"], "s", None,
               f"folding every row in the background; spike seen: {first['spike_exact']}"),
        Result(b, "first open: peak memory (whole TUI process)", first["peak_mb"], "MB", 150.0,
               f"{first['base_mb']:.0f} MB before opening the run"),
        Result(b, "reopen: exact charts drawn", again["charts"], "s", 1.0,
               f"saved view; spike seen: {again['spike']}"),
        Result(b, "reopen: completions drawn (after 2)", again["samples"], "s", 1.0, ""),
        Result(b, "reopen: peak memory (whole TUI process)", again["peak_mb"], "MB", 150.0,
               f"{again['base_mb']:.0f} MB before opening the run"),
    ]
