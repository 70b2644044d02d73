"""Launch plans (argv, env, config files), exports, and the [launch] validation rules."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import RECIPES, workbench_cmd
from workbench.core import launch, supervisor
from workbench.core.problems import BadInput
from workbench.core.recipe import Recipe
from workbench.core.validate import validate_recipe


def recipe(**launch_keys) -> Recipe:
    r = Recipe.load(RECIPES / "grpo-tiny.toml")
    for k, v in launch_keys.items():
        r.set(f"launch.{k}", v)
    return r


def test_python_backend_is_one_plain_process(tmp_path):
    p = launch.plan(recipe(), tmp_path)
    assert p.argv == [sys.executable, "-m", "workbench.train", str(tmp_path)] and p.files == {}


def test_torchrun_multi_node_arguments(tmp_path):
    p = launch.plan(recipe(backend="torchrun", num_processes=8, num_machines=2, machine_rank=1,
                           main_address="10.1.2.3", main_port=29600), tmp_path)
    assert p.argv[1:3] == ["-m", "torch.distributed.run"]
    for arg in ("--nproc_per_node=8", "--nnodes=2", "--node_rank=1", "--master_addr=10.1.2.3", "--master_port=29600"):
        assert arg in p.argv
    assert "--standalone" not in p.argv and p.argv[-3:] == ["-m", "workbench.train", str(tmp_path)]


def test_accelerate_writes_its_config(tmp_path):
    p = launch.plan(recipe(backend="accelerate", num_processes=4, num_machines=2, main_address="h0"), tmp_path)
    assert p.argv[1:5] == ["-m", "accelerate.commands.launch", "--config_file", str(tmp_path / "accelerate.yaml")]
    yaml = p.files["accelerate.yaml"]
    assert 'distributed_type: "MULTI_GPU"' in yaml and "num_processes: 8" in yaml and "num_machines: 2" in yaml
    assert 'main_process_ip: "h0"' in yaml


def test_deepspeed_config_is_concrete(tmp_path):
    r = recipe(backend="deepspeed", num_processes=2, zero_stage=3, offload_optimizer=True, offload_params=True,
               mixed_precision="bf16")
    r.set("train.per_device_train_batch_size", 4)
    r.set("train.gradient_accumulation_steps", 2)
    p = launch.plan(r, tmp_path)
    cfg = json.loads(p.files["ds_config.json"])
    assert cfg["train_batch_size"] == 4 * 2 * 2 and cfg["train_micro_batch_size_per_gpu"] == 4
    assert cfg["zero_optimization"]["stage"] == 3
    assert cfg["zero_optimization"]["offload_optimizer"]["device"] == "cpu"
    assert cfg["zero_optimization"]["offload_param"]["device"] == "cpu"
    assert cfg["bf16"] == {"enabled": True} and cfg["fp16"] == {"enabled": False}
    assert "auto" not in json.dumps(cfg)
    assert p.argv[1:3] == ["-m", "torch.distributed.run"], "DeepSpeed engine, torchrun processes (works on CPU)"


def test_deepspeed_hostfile_uses_deepspeeds_launcher(tmp_path):
    p = launch.plan(recipe(backend="deepspeed", zero_stage=2, num_machines=2, hostfile="/etc/hosts"), tmp_path)
    assert p.argv[1:3] == ["-m", "deepspeed.launcher.runner"] and "--hostfile" in p.argv
    assert p.argv[-3:] == ["--module", "workbench.train", str(tmp_path)]


def test_deepspeed_rejection_is_bad_input():
    bad = launch.LaunchPlan([], {}, {"ds_config.json": json.dumps({
        "train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 1, "train_batch_size": 4,
        "zero_optimization": {"stage": 7}})})
    with pytest.raises(BadInput) as e:
        supervisor.check_deepspeed(bad, "r.toml")
    assert "DeepSpeed rejects" in str(e.value)
    supervisor.check_deepspeed(launch.plan(recipe(backend="deepspeed", zero_stage=3), Path("/x")), "r.toml")


@pytest.mark.parametrize("keys,key,phrase", [
    ({"zero_stage": 2}, "launch.zero_stage", "needs a distributed launcher"),
    ({"backend": "torchrun", "offload_params": True, "zero_stage": 2}, "launch.offload_params", "ZeRO stage 3"),
    ({"backend": "torchrun", "offload_optimizer": True}, "launch.offload_optimizer", "needs ZeRO"),
    ({"backend": "torchrun", "num_machines": 2}, "launch.main_address", "rank-0 machine's address"),
    ({"backend": "deepspeed", "num_machines": 2}, "launch.num_machines", "hostfile"),
    ({"backend": "torchrun", "num_machines": 2, "main_address": "h", "machine_rank": 2}, "launch.machine_rank",
     "below num_machines"),
    ({"num_processes": 2}, "launch.num_processes", "runs one process"),
    ({"backend": "deepspeed", "hostfile": "no-such-hostfile"}, "launch.hostfile", "not found"),
])
def test_launch_rules(keys, key, phrase):
    problems = validate_recipe(recipe(**keys))
    assert any(p.key == key and phrase in p.message for p in problems), [p.format() for p in problems]


def test_export_sbatch_is_valid_bash_and_runs_the_trainer(tmp_path):
    out = tmp_path / "job.sbatch"
    proc = subprocess.run(workbench_cmd("export", str(RECIPES / "grpo-tiny.toml"), "--to", "sbatch", "-o", str(out),
                                        "--set", 'launch.backend="torchrun"', "--set", "launch.num_processes=4",
                                        "--set", "launch.num_machines=2", "--set", 'launch.main_address="n0"'),
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert subprocess.run(["bash", "-n", str(out)]).returncode == 0
    assert "#SBATCH --nodes=2" in text and "#SBATCH --gpus-per-node=4" in text
    assert "-m torch.distributed.run" in text and "--nproc_per_node=4" in text and "-m workbench.train" in text


def test_export_shell_deepspeed_accelerate_trl():
    base = workbench_cmd("export", str(RECIPES / "grpo-tiny.toml"), "--set", 'launch.backend="deepspeed"',
                         "--set", "launch.zero_stage=2", "--set", "launch.num_processes=2")
    shell = subprocess.run(base + ["--to", "shell"], capture_output=True, text=True)
    assert shell.returncode == 0 and "-m torch.distributed.run" in shell.stdout and "ds_config.json" in shell.stdout
    ds = subprocess.run(base + ["--to", "deepspeed"], capture_output=True, text=True)
    assert json.loads(ds.stdout)["zero_optimization"]["stage"] == 2
    acc = subprocess.run(base + ["--to", "accelerate"], capture_output=True, text=True)
    assert "distributed_type" in acc.stdout
    trl = subprocess.run(base + ["--to", "trl"], capture_output=True, text=True)
    assert "trl grpo --config" in trl.stdout and "num_generations: 4" in trl.stdout
    assert "model_name_or_path:" in trl.stdout and "arith-prompts.jsonl" in trl.stdout


def test_shell_word_quotes_values_and_leaves_only_run_dir_to_the_shell():
    ph = launch.run_dir_placeholder()
    assert launch.shell_word(str(ph / "accelerate.yaml"), ph) == '"$RUN_DIR"/accelerate.yaml'
    assert launch.shell_word(str(ph), ph) == '"$RUN_DIR"'
    assert launch.shell_word("$RUN_DIR/x", ph) == "'$RUN_DIR/x'", "a recipe value is data, even if it looks like one"
    assert launch.shell_word("it's $(x)") == "'it'\"'\"'s $(x)'"
    with pytest.raises(ValueError):
        launch.shell_command(launch.LaunchPlan(["python"], {"A=B; touch x; C": "1"}))
