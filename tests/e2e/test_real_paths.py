"""Paths a GPU user walks, with the real trainer on the CPU: a LoRA reward model whose head trains, a prepared run
started by `workbench start`, and an orphaned trainer (its runner SIGKILLed) that is still reported alive and
stops cleanly with a checkpoint."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.conftest import RECIPES, workbench_cmd
from workbench.core import lifecycle, supervisor
from workbench.core.metrics import read_history
from workbench.core.rundir import RunDir

pytestmark = pytest.mark.e2e


def cli(runs_dir, *args, timeout=300):
    proc = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), *args), capture_output=True, text=True,
                          timeout=timeout)
    return proc


def only_run(runs_dir) -> RunDir:
    (path,) = [p for p in runs_dir.iterdir() if p.is_dir() and (p / "status.json").exists()]
    return RunDir(path)


def test_lora_reward_model_trains_its_head_and_saves_a_plain_model(runs_dir):
    proc = cli(runs_dir, "run", str(RECIPES / "reward-tiny.toml"), "--set", 'peft.method="lora"',
               "--set", "train.max_steps=6", "--set", "train.learning_rate=5e-3")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rd = only_run(runs_dir)
    assert supervisor.status(rd)["state"] == "completed"
    assert not (rd.final_model / "adapter_config.json").exists(), "merged into a plain model"
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification

    from workbench.train.builtin import ensure_builtin

    base = load_file(str(ensure_builtin("tiny-rm") / "model.safetensors"))
    final = AutoModelForSequenceClassification.from_pretrained(str(rd.final_model))
    head = final.score.weight.detach()
    assert head.shape == base["score.weight"].shape
    assert not torch.allclose(head, base["score.weight"]), "the score head trained (modules_to_save)"


def test_prepared_run_is_started_by_workbench_start(runs_dir):
    prep = cli(runs_dir, "prepare", str(RECIPES / "sft-tiny.toml"), "--set", "train.max_steps=3")
    assert prep.returncode == 0, prep.stderr
    rd = RunDir(prep.stdout.strip())
    assert supervisor.status(rd)["state"] == "prepared"
    started = cli(runs_dir, "start", rd.id)
    assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
    st = supervisor.status(rd)
    assert st["state"] == "completed" and st.get("runner_pid") and (rd.final_model / "config.json").is_file()


def test_orphaned_real_trainer_is_alive_and_stops_with_a_checkpoint(runs_dir):
    proc = cli(runs_dir, "run", str(RECIPES / "grpo-tiny.toml"), "--detach", "--set", "train.max_steps=400",
               "--set", "train.save_steps=1000", timeout=60)
    assert proc.returncode == 0, proc.stderr
    rd = only_run(runs_dir)
    deadline = time.monotonic() + 180
    while read_history(rd.metrics_path).step < 2:
        assert time.monotonic() < deadline, "no training step"
        time.sleep(0.3)
    st = rd.read_status()
    os.kill(st["runner_pid"], signal.SIGKILL)  # only the runner
    time.sleep(0.5)
    st = supervisor.status(rd)
    assert st["state"] == "running", "the trainer is alive: the run is not 'killed'"
    assert st["trainer_pid"] in lifecycle.processes(rd, st)
    stopped = cli(runs_dir, "stop", rd.id, timeout=120)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stdout + stopped.stderr
    st = supervisor.status(rd)
    assert st["state"] == "stopped" and not lifecycle.processes(rd, st)
    ckpt, _ = lifecycle.resume_checkpoint(rd)
    assert ckpt is not None, "the stop saved a complete checkpoint"
