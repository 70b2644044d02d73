"""Realistic run directories written by hand (no training) for the startup and import benchmarks.

A run dir looks like what the runner and the trainer leave behind (see workbench/core/rundir.py): status.json,
launch.json, recipe.toml (a shipped recipe), metrics.jsonl with trl-shaped rows (GRPO rows carry the ~35 keys a
real GRPO/RLOO run logs, ~1.4 kB each), samples.jsonl for the RL stages, stdout.log and a heartbeat.

"Live" runs need a live runner: ``FakeRunner`` is a sleeping child whose command line mentions workbench, so
``supervisor.status`` finds the pid alive (as for a real run on this host) and never settles the run. Other live
runs say they are on another host (a shared runs dir on a cluster), which status() leaves alone too.
"""
from __future__ import annotations

import json
import math
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import ROOT

FIXTURE_VERSION = "1"
RECIPES = ROOT / "recipes"
STAGES = ["grpo", "sft", "dpo", "rloo", "grpo", "ppo", "reward", "kto", "pretrain", "distill", "grpo", "sft"]


class FakeRunner:
    """A sleeping process that passes for a run's runner (pid alive, 'workbench' in its command line)."""

    def __init__(self, seconds: float = 3600):
        self.proc = subprocess.Popen([sys.executable, "-c", "import sys, time; time.sleep(float(sys.argv[1]))",
                                      str(seconds), "workbench-bench-fake-runner"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # our own child, by its pid
        self.proc.wait(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _grpo_row(step: int, max_steps: int, rng: random.Random, t: float, epoch_len: int) -> dict:
    prog = step / max_steps
    reward = -0.8 + 3.0 * prog + rng.gauss(0, 0.15)
    fmt, cor = min(1.0, 1.2 * prog + rng.gauss(0, 0.05)), max(0.0, 2.0 * prog - 0.3 + rng.gauss(0, 0.1))
    return {"step": step, "time": t, "epoch": step / epoch_len, "loss": rng.gauss(0, 0.02),
            "grad_norm": abs(rng.gauss(3.0, 1.0)), "learning_rate": 1e-4 * (1 - prog), "num_tokens": 520.0 * step,
            "completions/mean_length": 28.5 - 10 * prog, "completions/min_length": 4.0,
            "completions/max_length": 32.0, "completions/clipped_ratio": max(0.0, 0.9 - prog),
            "completions/mean_terminated_length": 4.0 + 10 * prog, "completions/min_terminated_length": 4.0,
            "completions/max_terminated_length": 24.0, "kl": 0.002 * step ** 0.5 + abs(rng.gauss(0, 1e-3)),
            "rewards/format/mean": fmt, "rewards/format/std": abs(rng.gauss(0.3, 0.05)),
            "rewards/correctness/mean": cor, "rewards/correctness/std": abs(rng.gauss(0.6, 0.1)),
            "rewards/length/mean": -0.5 + 0.4 * prog, "rewards/length/std": abs(rng.gauss(0.2, 0.03)),
            "reward": reward, "reward_std": abs(rng.gauss(0.5, 0.1)), "frac_reward_zero_std": rng.random() * 0.2,
            "entropy": 6.0 - 3.0 * prog, "clip_ratio/low_mean": 0.0, "clip_ratio/low_min": 0.0,
            "clip_ratio/high_mean": 0.0, "clip_ratio/high_max": 0.0, "clip_ratio/region_mean": 0.0,
            "step_time": abs(rng.gauss(0.08, 0.01))}


def _sft_row(step: int, max_steps: int, rng: random.Random, t: float, epoch_len: int) -> dict:
    prog = step / max_steps
    return {"step": step, "time": t, "epoch": step / epoch_len, "loss": 3.0 * math.exp(-3 * prog) + rng.gauss(0, .05),
            "grad_norm": abs(rng.gauss(1.5, 0.4)), "learning_rate": 2e-4 * (1 - prog), "num_tokens": 4096.0 * step,
            "mean_token_accuracy": 0.2 + 0.6 * prog + rng.gauss(0, 0.02), "entropy": 5.0 - 2.5 * prog}


def _dpo_row(step: int, max_steps: int, rng: random.Random, t: float, epoch_len: int) -> dict:
    prog = step / max_steps
    chosen, rejected = 0.5 * prog + rng.gauss(0, .05), -0.5 * prog + rng.gauss(0, .05)
    return {"step": step, "time": t, "epoch": step / epoch_len, "loss": 0.69 * math.exp(-2 * prog),
            "grad_norm": abs(rng.gauss(2.0, 0.5)), "learning_rate": 5e-6 * (1 - prog), "rewards/chosen": chosen,
            "rewards/rejected": rejected, "rewards/accuracies": min(1.0, 0.5 + 0.5 * prog),
            "rewards/margins": chosen - rejected, "logps/chosen": -80 + 10 * prog, "logps/rejected": -85 - 10 * prog,
            "logits/chosen": rng.gauss(-1, .1), "logits/rejected": rng.gauss(-1, .1)}


ROW = {"grpo": _grpo_row, "rloo": _grpo_row, "ppo": _grpo_row, "sft": _sft_row, "pretrain": _sft_row,
       "distill": _sft_row, "reward": _dpo_row, "dpo": _dpo_row, "kto": _dpo_row}


def make_run(runs_dir: Path, run_id: str, *, stage: str, state: str, created: float, rows: int, max_steps: int,
             rng: random.Random, runner_pid: int | None = None, host: str = "this-host") -> Path:
    d = runs_dir / run_id
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    recipe = RECIPES / f"{stage}-tiny.toml"
    (d / "recipe.toml").write_text(recipe.read_text() if recipe.is_file() else f'[run]\nstage = "{stage}"\n')
    (d / "launch.json").write_text(json.dumps({"argv": [sys.executable, "-m", "workbench.train", str(d)],
                                               "env": {"WORKBENCH_RUN_DIR": str(d)}, "cwd": str(ROOT),
                                               "host": host}, indent=2))
    from workbench.core.rundir import boot_time

    live = state in ("queued", "running")
    step_time = (time.time() - created - 10) / max(1, rows) if live else rng.uniform(0.5, 20.0)
    started = created + rng.uniform(0.5, 3.0)
    status = {"state": state, "stage": stage, "name": run_id.split("-", 2)[-1], "model": "builtin:tiny-lm",
              "created": created, "host": host, "boot_time": boot_time(), "runner_pid": runner_pid, "pgid": runner_pid,
              "started": started, "trainer_pid": runner_pid, "phase": "training" if live else "done",
              "device": "cuda:0"}
    t = started + 5
    lines = [json.dumps({"event": "train_begin", "step": 0, "max_steps": max_steps, "time": t})]
    row_fn = ROW.get(stage, _sft_row)
    for s in range(1, rows + 1):
        t += step_time
        lines.append(json.dumps(row_fn(s, max_steps, rng, t, max(1, max_steps // 3))))
        if s % 100 == 0:
            lines.append(json.dumps({"event": "checkpoint", "step": s, "time": t}))
    if state == "completed":
        lines.append(json.dumps({"event": "train_end", "step": rows, "time": t + 1}))
    (d / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    if stage in ("grpo", "rloo"):
        samples = []
        for s in range(10, rows + 1, 10):
            for i in range(8):
                good = rng.random() < s / max_steps
                samples.append(json.dumps({
                    "step": s, "group": i // 4, "index": i,
                    "prompt": f"system\nRespond in the format <reasoning>...</reasoning><answer>...</answer>\n"
                              f"user\nWhat is {s % 9} + {i}?\nassistant\n",
                    "completion": (f"<reasoning>{s % 9} plus {i}</reasoning><answer>{s % 9 + i}</answer>"
                                   if good else "writes1Y austhen good"),
                    "rewards": {"format": 1.0 if good else 0.0, "correctness": 2.0 if good else 0.0},
                    "reward": 3.0 if good else 0.0, "advantage": 0.7 if good else -0.7}))
        (d / "samples.jsonl").write_text("\n".join(samples) + "\n")
    (d / "stdout.log").write_text("".join(f"{{'loss': {rng.random():.4f}, 'step': {s}}}\n" for s in range(rows // 5)))
    (d / "runner.log").write_text("")
    (d / "heartbeat").write_text(f"{time.time():.3f}\n")
    if not live:
        ok = state == "completed"
        status.update(outcome=state, exit_code=0 if ok else (-9 if state == "killed" else 1),
                      ended=t + 2, duration=t + 2 - started)
        if state == "failed":
            status.update(error="torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
                          hint="lower per_device_train_batch_size or enable gradient_checkpointing")
        if state == "killed":
            status["error"] = "the process tree disappeared without finishing (SIGKILL?)"
    (d / "status.json").write_text(json.dumps(status, indent=2))
    return d


def make_runs(runs_dir: Path, n: int, *, seed: int = 0, live_pid: int | None = None, rows: tuple[int, int] = (150, 400),
              live: int = 0, failed: int = 0, killed: int = 0) -> list[Path]:
    """n run dirs, newest last; the last `live` are running (alternately on this host with live_pid, and on
    another host); `failed` and `killed` ones are spread over the rest. Replaces runs_dir."""
    from workbench.core.rundir import hostname

    if runs_dir.exists():
        shutil.rmtree(runs_dir)
    runs_dir.mkdir(parents=True)
    rng = random.Random(seed)
    now = time.time()
    out = []
    failed_at = set(rng.sample(range(n - live), failed)) if failed else set()
    killed_at = set(rng.sample(sorted(set(range(n - live)) - failed_at), killed)) if killed else set()
    for i in range(n):
        created = now - (n - i) * 3 * 3600 + rng.uniform(0, 600)
        if i >= n - live:  # live runs started within the last hour or so
            created = now - (n - i) * 900 - rng.uniform(60, 600)
        stage = STAGES[i % len(STAGES)]
        run_id = time.strftime("%Y%m%d-%H%M%S", time.localtime(created)) + f"-{stage}-exp{i:03d}"
        max_steps = rng.choice([200, 300, 400, 500])
        n_rows = rng.randint(*rows)
        host, pid = hostname(), None
        if i >= n - live:
            state = "running"
            n_rows = min(n_rows, max_steps - 1)
            if (n - i) % 2 and live_pid:
                pid = live_pid
            else:
                host = "gpu-node-07"
        elif i in failed_at:
            state, n_rows = "failed", n_rows // 3
        elif i in killed_at:
            state, n_rows = "killed", n_rows // 2
        else:
            state, max_steps = "completed", n_rows
        out.append(make_run(runs_dir, run_id, stage=stage, state=state, created=created, rows=n_rows,
                            max_steps=max_steps, rng=rng, runner_pid=pid, host=host))
    return out
