"""A trainer stand-in for bench_live, started by the real supervisor and runner: it logs like GRPO does.

    python -m benchmarks.live_writer RUN_DIR RATE SECONDS

RATE metric rows per second (22 trl GRPO keys each) for SECONDS, a batch of 16 sampled completions every
second, a stdout line per row; lifecycle events and status as the real trainer writes them.
"""
from __future__ import annotations

import json
import random
import sys
import time

from workbench.core.rundir import RunDir

KEYS = ["loss", "grad_norm", "learning_rate", "reward", "reward_std", "kl", "entropy", "frac_reward_zero_std",
        "completions/mean_length", "completions/min_length", "completions/max_length", "completions/clipped_ratio",
        "clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean", "num_tokens",
        "rewards/format/mean", "rewards/format/std", "rewards/correctness/mean", "rewards/correctness/std",
        "step_time", "epoch_progress"]


def main(run_dir: str, rate: float, seconds: float) -> None:
    rd = RunDir(run_dir)
    rnd = random.Random(0)
    total = int(rate * seconds)
    metrics = open(rd.metrics_path, "a", encoding="utf-8")  # noqa: SIM115 - for the life of the process
    samples = open(rd.samples_path, "a", encoding="utf-8")  # noqa: SIM115
    rd.write_status(trainer_pid=__import__("os").getpid(), phase="training")
    metrics.write(json.dumps({"event": "train_begin", "step": 0, "max_steps": total, "time": time.time()}) + "\n")
    metrics.flush()
    start = time.monotonic()
    for step in range(1, total + 1):
        time.sleep(max(0.0, start + step / rate - time.monotonic()))
        row = {"step": step, "time": time.time(), "epoch": step / total}
        row.update({k: rnd.random() for k in KEYS})
        metrics.write(json.dumps(row) + "\n")
        metrics.flush()
        print(f"{{'loss': {row['loss']:.4f}, 'reward': {row['reward']:.4f}, 'step': {step}}}", flush=True)
        if step % int(rate) == 0:
            samples.write("".join(json.dumps({
                "step": step, "group": i // 8, "index": i, "prompt": f"user\nWhat is {i} + {step % 10}?\nassistant\n",
                "completion": f"<reasoning>adding</reasoning><answer>{i + step % 10}</answer>",
                "rewards": {"format": 1.0, "correctness": 2.0}, "reward": 3.0, "advantage": 0.1}) + "\n"
                for i in range(16)))
            samples.flush()
    metrics.write(json.dumps({"event": "train_end", "step": total, "time": time.time()}) + "\n")
    metrics.flush()
    rd.write_status(outcome="completed", phase="done")


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), float(sys.argv[3]))
