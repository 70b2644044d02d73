"""Real multi-process runs on this CPU machine: DeepSpeed ZeRO-2 and ZeRO-3 with CPU offload (2 processes,
gloo), accelerate with 2 processes, and a prepared run started without the runner (the sbatch path).

The first DeepSpeed run JIT-builds shm_comm (~30 s) and, with offload, cpu_adam (~45 s) into
TORCH_EXTENSIONS_DIR (.cache/torch_extensions); later runs reuse them.
"""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.conftest import RECIPES, workbench_cmd
from workbench.core.rundir import RunDir

pytestmark = pytest.mark.e2e


def run(runs_dir, recipe, *sets, timeout=600):
    args = ["--runs-dir", str(runs_dir), "run", str(recipe)]
    for s in sets:
        args += ["--set", s]
    proc = subprocess.run(workbench_cmd(*args), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (path,) = [p for p in runs_dir.iterdir() if p.is_dir()]
    return RunDir(path)


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_deepspeed_zero2_two_processes(runs_dir):
    rd = run(runs_dir, RECIPES / "grpo-tiny.toml", 'launch.backend="deepspeed"', "launch.num_processes=2",
             "launch.zero_stage=2", "train.max_steps=4", "train.per_device_train_batch_size=4", "train.save_steps=100")
    st = rd.read_status()
    assert st["state"] == "completed", st
    assert json.loads((rd.path / "ds_config.json").read_text())["zero_optimization"]["stage"] == 2
    assert "DeepSpeed" in rd.stdout_path.read_text(), "the DeepSpeed engine ran"
    logs = [r for r in rows(rd.metrics_path) if "loss" in r]
    assert [r["step"] for r in logs] == [1, 2, 3, 4], "rank 0 only: one copy of each metric line"
    assert len(rows(rd.samples_path)) == 4 * 8, "4 completions per process per step, gathered from both"


def test_deepspeed_zero3_cpu_offload_two_processes(runs_dir):
    rd = run(runs_dir, RECIPES / "sft-tiny.toml", 'launch.backend="deepspeed"', "launch.num_processes=2",
             "launch.zero_stage=3", "launch.offload_optimizer=true", "launch.offload_params=true",
             "train.max_steps=3", "train.logging_steps=1", "train.per_device_train_batch_size=4")
    assert rd.read_status()["state"] == "completed"
    assert [r["step"] for r in rows(rd.metrics_path) if "loss" in r] == [1, 2, 3]
    assert (rd.final_model / "model.safetensors").stat().st_size > 100_000, "ZeRO-3 weights gathered on save"


def test_accelerate_two_processes(runs_dir):
    rd = run(runs_dir, RECIPES / "grpo-tiny.toml", 'launch.backend="accelerate"', "launch.num_processes=2",
             "train.max_steps=3", "train.per_device_train_batch_size=4", "train.save_steps=100")
    assert rd.read_status()["state"] == "completed"
    assert (rd.path / "accelerate.yaml").is_file()
    assert len(rows(rd.samples_path)) == 3 * 8, "two processes generated"


def test_prepared_run_started_by_hand_reports_its_own_state(runs_dir):
    """The sbatch path: `workbench prepare` makes the run dir; the launcher (here: the exported argv) runs it."""
    prep = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "prepare", str(RECIPES / "grpo-tiny.toml"),
                                        "--set", "train.max_steps=2"), capture_output=True, text=True, timeout=60)
    assert prep.returncode == 0, prep.stderr
    rd = RunDir(prep.stdout.strip())
    assert rd.read_status()["state"] == "prepared"
    launch = json.loads(rd.launch_path.read_text())
    child = subprocess.run(launch["argv"], env={**os.environ, **launch["env"]}, capture_output=True, text=True,
                           timeout=300)
    assert child.returncode == 0, child.stdout[-2000:] + child.stderr[-2000:]
    st = rd.read_status()
    assert st["state"] == "completed" and st["runnerless"], st
    assert rd.heartbeat_age() is not None, "a runner-less trainer keeps its own heartbeat"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_machines_on_localhost_each_end_with_their_own_outcome(tmp_path):
    """A 2-node torchrun run on one host: machine 0 and machine 1 are two `workbench run`s, each with its own
    runs dir (as on two machines). Both must end completed; machine 0 holds the metrics and the final model."""
    port = free_port()
    machines = []
    for rank in (0, 1):
        runs = tmp_path / f"machine{rank}"
        runs.mkdir()
        args = ["--runs-dir", str(runs), "run", str(RECIPES / "sft-tiny.toml"), "--detach",
                "--set", 'launch.backend="torchrun"', "--set", "launch.num_machines=2",
                "--set", f"launch.machine_rank={rank}", "--set", 'launch.main_address="127.0.0.1"',
                "--set", f"launch.main_port={port}", "--set", "train.max_steps=4", "--set", "train.save_steps=100",
                "--set", "train.logging_steps=1"]
        proc = subprocess.run(workbench_cmd(*args), capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        (path,) = [p for p in runs.iterdir() if p.is_dir()]
        machines.append(RunDir(path))
    from tests.core.fakes import wait_until
    from workbench.core import supervisor

    wait_until(lambda: all(supervisor.status(rd)["state"] not in ("queued", "running") for rd in machines),
               timeout=300, what="both machines to finish")
    main, member = machines
    for rd in machines:
        st = supervisor.status(rd)
        assert st["state"] == "completed", (rd.id, st, rd.stdout_path.read_text()[-2000:])
    assert member.read_status()["role"] == "member" and member.read_status()["machine_rank"] == 1
    assert [r["step"] for r in rows(main.metrics_path) if "loss" in r] == [1, 2, 3, 4]
    member_rows = rows(member.metrics_path)
    assert not [r for r in member_rows if "loss" in r], "only the rank-0 machine writes metric rows"
    assert {r.get("event") for r in member_rows} >= {"train_begin", "train_end"}
    assert (main.final_model / "model.safetensors").is_file() and not member.final_model.exists()
