"""How a run's processes start: the argv, the environment delta, and the config files written into the run
directory (ds_config.json, accelerate.yaml). Also the export forms (shell, sbatch, trl) of the same.

Backends:
  python      one process:               python -m workbench.train RUN_DIR
  torchrun    DDP, one or more machines: python -m torch.distributed.run --nproc_per_node N [--nnodes ...] -m ...
  accelerate  python -m accelerate.commands.launch --config_file RUN_DIR/accelerate.yaml -m workbench.train RUN_DIR
  deepspeed   the DeepSpeed engine; processes started by torchrun (works on one machine and on CPU), or by
              DeepSpeed's own launcher when [launch] hostfile is set (multi-node over ssh).
ZeRO (zero_stage > 0, any backend but python) goes through TrainingArguments(deepspeed=RUN_DIR/ds_config.json).
The DeepSpeed JSON holds concrete batch values (no "auto" the DeepSpeed config class cannot take); only
bf16/fp16 "enabled" stay "auto" when mixed_precision = "auto", which the Trainer fills from its own arguments.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from workbench.core.recipe import Recipe

CHILD_ENV = {"PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false", "TRANSFORMERS_VERBOSITY": "warning"}
TRAIN_MODULE = ["-m", "workbench.train"]


@dataclass
class LaunchPlan:
    argv: list[str]
    env: dict[str, str]
    files: dict[str, str] = field(default_factory=dict)  # name in the run dir -> content
    server: dict | None = None  # the vLLM server the runner starts first (workbench/core/vllm_server.py)


def uses_deepspeed(recipe: Recipe) -> bool:
    return recipe.get("launch.backend", "python") == "deepspeed" or int(recipe.get("launch.zero_stage", 0)) > 0


def world_size(recipe: Recipe) -> int:
    return int(recipe.get("launch.num_processes", 1)) * int(recipe.get("launch.num_machines", 1))


def deepspeed_config(recipe: Recipe, defaults: dict | None = None) -> dict:
    """The DeepSpeed JSON for a recipe; ``defaults`` are the trl config's field defaults (for unset keys)."""
    t, launch = recipe.section("train"), recipe.section("launch")
    d = defaults or {}
    micro = int(t.get("per_device_train_batch_size", d.get("per_device_train_batch_size", {}).get("default", 8)))
    accum = int(t.get("gradient_accumulation_steps", d.get("gradient_accumulation_steps", {}).get("default", 1)))
    clip = float(t.get("max_grad_norm", d.get("max_grad_norm", {}).get("default", 1.0)))
    zero: dict = {"stage": int(launch.get("zero_stage", 0))}
    if launch.get("offload_optimizer"):
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    if launch.get("offload_params"):
        zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    if zero["stage"] == 3:
        zero["stage3_gather_16bit_weights_on_model_save"] = True  # so save_model writes full weights
    mp = launch.get("mixed_precision", "auto")
    return {
        "train_micro_batch_size_per_gpu": micro,
        "gradient_accumulation_steps": accum,
        "train_batch_size": micro * accum * world_size(recipe),
        "gradient_clipping": clip,
        "zero_optimization": zero,
        "bf16": {"enabled": "auto" if mp == "auto" else mp == "bf16"},
        "fp16": {"enabled": "auto" if mp == "auto" else mp == "fp16"},
    }


def accelerate_config(recipe: Recipe) -> str:
    launch = recipe.section("launch")
    n, machines = int(launch.get("num_processes", 1)), int(launch.get("num_machines", 1))
    mp = launch.get("mixed_precision", "auto")
    lines = {
        "compute_environment": "LOCAL_MACHINE",
        # MULTI_GPU = "start N processes"; on a CPU-only box the Trainer then picks gloo (FINDINGS.md: --cpu runs one)
        "distributed_type": "MULTI_GPU" if n * machines > 1 else "NO",
        "num_machines": machines,
        "machine_rank": int(launch.get("machine_rank", 0)),
        "num_processes": n * machines,
        "main_process_ip": launch.get("main_address") or "127.0.0.1",
        "main_process_port": int(launch.get("main_port", 29500)),
        "mixed_precision": "no" if mp in ("auto", "no") else mp,
        "gpu_ids": "all",
        "same_network": True,
        "rdzv_backend": "static",
        "dynamo_config": {"dynamo_backend": "NO"},
    }
    return "".join(f"{k}: {json.dumps(v)}\n" for k, v in lines.items())


def torchrun_args(recipe: Recipe) -> list[str]:
    launch = recipe.section("launch")
    n, machines = int(launch.get("num_processes", 1)), int(launch.get("num_machines", 1))
    args = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={n}"]
    if machines > 1:
        args += [f"--nnodes={machines}", f"--node_rank={int(launch.get('machine_rank', 0))}",
                 f"--master_addr={launch.get('main_address') or '127.0.0.1'}",
                 f"--master_port={int(launch.get('main_port', 29500))}"]
    else:
        args.insert(3, "--standalone")
    return args


def plan(recipe: Recipe, run_dir: Path, schema_defaults: dict | None = None) -> LaunchPlan:
    launch = recipe.section("launch")
    backend = launch.get("backend", "python")
    target = [*TRAIN_MODULE, str(run_dir)]
    env = dict(CHILD_ENV, WORKBENCH_RUN_DIR=str(run_dir))
    files: dict[str, str] = {}
    if world_size(recipe) > 1 and "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = "1"  # two threads per process made SFT 9x slower on 2 cores (FINDINGS.md)
    if uses_deepspeed(recipe):
        files["ds_config.json"] = json.dumps(deepspeed_config(recipe, schema_defaults), indent=2) + "\n"
    if backend == "accelerate":
        files["accelerate.yaml"] = accelerate_config(recipe)
        argv = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                str(run_dir / "accelerate.yaml"), "-m", "workbench.train", str(run_dir)]
    elif backend == "deepspeed" and launch.get("hostfile"):
        argv = [sys.executable, "-m", "deepspeed.launcher.runner", "--hostfile", str(launch["hostfile"]),
                f"--master_port={int(launch.get('main_port', 29500))}", "--module", "workbench.train", str(run_dir)]
        if launch.get("main_address"):
            argv.insert(-3, f"--master_addr={launch['main_address']}")
    elif backend in ("torchrun", "deepspeed"):
        argv = [*torchrun_args(recipe), *target]
    else:
        argv = [sys.executable, *target]
    from workbench.core import vllm_server

    return LaunchPlan(argv, env, files, vllm_server.plan(recipe, run_dir))


RUN_DIR_VAR = "RUN_DIR"  # the run directory in exported scripts: set by the user, expanded by the shell
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SAFE_TOKEN_RE = re.compile(r"[^A-Za-z0-9_.-]+")


def run_dir_placeholder() -> Path:
    """A run-dir path no recipe value contains, for building a plan that an export writes as "$RUN_DIR"."""
    return Path("/") / f"workbench-run-dir-{secrets.token_hex(8)}"


def shell_word(word: str, run_dir: Path | None = None) -> str:
    """``word`` as one shell word: quoted, except that where ``run_dir`` (a placeholder) occurs the shell gets
    "$RUN_DIR" to expand, e.g. '"$RUN_DIR"/accelerate.yaml'."""
    if run_dir is None or str(run_dir) not in word:
        return shlex.quote(word)
    return f'"${RUN_DIR_VAR}"'.join(shlex.quote(part) if part else "" for part in word.split(str(run_dir)))


def shell_command(p: LaunchPlan, run_dir: Path | None = None) -> str:
    """The plan as one command line (env NAME=VALUE ... ARGV), every value quoted; see shell_word for run_dir."""
    for name in p.env:
        if not ENV_NAME_RE.fullmatch(name):
            raise ValueError(f"not an environment variable name: {name!r}")
    env = " ".join(f"{k}={shell_word(v, run_dir)}" for k, v in p.env.items())
    return f"env {env} {' '.join(shell_word(a, run_dir) for a in p.argv)}"


def comment(text: str) -> str:
    """Text as shell comment lines: each line of it (for whatever a line break is) starts with '#   '."""
    return "".join(f"#   {line}\n" for line in text.splitlines())


def shell_script(p: LaunchPlan, run_dir: Path) -> str:
    """`workbench export --to shell`: the trainer command for a run directory given as $RUN_DIR, built with
    ``run_dir`` (a placeholder) standing for it, and the config files it reads, as comments."""
    text = ("#!/bin/bash\n"
            "# The trainer command `workbench run` starts for this recipe. RUN_DIR is a run directory made by\n"
            "#   RUN_DIR=$(workbench prepare RECIPE)\n"
            f': "${{{RUN_DIR_VAR}:?set {RUN_DIR_VAR} to a directory made by \'workbench prepare\'}}"\n'
            + shell_command(p, run_dir) + "\n")
    for name, content in p.files.items():
        text += f"# it reads ${RUN_DIR_VAR}/{name}:\n" + comment(content.replace(str(run_dir), f"${RUN_DIR_VAR}"))
    if p.server:  # the runner starts it first; a script has to as well (PORT: a free loopback port)
        server = LaunchPlan([a if a != "{port}" else "PORT" for a in p.server["argv"]], p.server["env"])
        text += ("# vLLM server mode: start the server first, and give the trainer the same port\n"
                 "# (WORKBENCH_VLLM_PORT=PORT) and the other GPUs (CUDA_VISIBLE_DEVICES):\n"
                 + comment(shell_command(server, run_dir)))
    return text


def job_name(name: str) -> str:
    """A run name as a single safe token (Slurm's --job-name): no spaces, quotes, line breaks or $."""
    return SAFE_TOKEN_RE.sub("-", name).strip("-.")[:64] or "workbench"


def sbatch_script(recipe: Recipe) -> str:
    """A Slurm batch script that starts the same trainer on every node with srun + torchrun.

    Only integers and a sanitised job name come from the recipe into the script text; the interpreter, the
    master address and $RUN_DIR reach the node command as arguments ("$1".."$3"), never as script text.
    """
    launch = recipe.section("launch")
    n, machines = int(launch.get("num_processes", 1)), int(launch.get("num_machines", 1))
    port = int(launch.get("main_port", 29500))
    node_command = (f'exec "$1" -m torch.distributed.run --nnodes={machines} --node_rank="$SLURM_NODEID" '
                    f'--nproc_per_node={n} --master_addr="$2" --master_port={port} -m workbench.train "$3"')
    return f"""#!/bin/bash
#SBATCH --job-name={job_name(recipe.name)}
#SBATCH --nodes={machines}
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node={n}
#SBATCH --output=%x-%j.out
# Generated by `workbench export --to sbatch`. The run directory must be on a filesystem every node sees.
# Prepare it once (frozen recipe, status), then submit:  RUN_DIR=$(workbench prepare RECIPE) sbatch THIS_FILE
set -euo pipefail
: "${{{RUN_DIR_VAR}:?set {RUN_DIR_VAR} to a directory made by 'workbench prepare'}}"
PYTHON={shlex.quote(sys.executable)}
PYTHON=${{WORKBENCH_PYTHON:-$PYTHON}}  # another interpreter path on the nodes, if it differs
# sed reads every line: `| head -n 1` can die of SIGPIPE on a long node list, which pipefail turns into an exit
MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | sed -n 1p)
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
# Each node's bash expands its own $SLURM_NODEID.
srun --kill-on-bad-exit=1 bash -c {shlex.quote(node_command)} workbench-node "$PYTHON" "$MASTER_ADDR" "${RUN_DIR_VAR}"
"""


def trl_config(recipe: Recipe, model_path: str) -> str:
    """A config for the trl CLI (`trl <stage> --config FILE`): model, dataset and the [train] fields as-is."""
    source = " ".join(str(recipe.display_name).split())  # one comment line, whatever the path holds
    lines = [f"# trl CLI config exported by workbench from {source}",
             f"# run with: trl {recipe.stage} --config THIS_FILE",
             "# not carried over: workbench reward functions, [data] system_prompt shaping, run directory, status."]
    body = {"model_name_or_path": model_path, "dataset_name": str(recipe.resolve_path(recipe.get("data.path", "")))
            if recipe.resolve_path(recipe.get("data.path", "")).exists() else recipe.get("data.path", ""),
            "output_dir": f"{recipe.name}-trl"}
    method = recipe.get("peft.method", "full")
    if method in ("lora", "dora", "qlora"):  # trl's ModelConfig knows LoRA, DoRA and a 4-bit base
        body.update(use_peft=True, lora_r=recipe.get("peft.r", 8), lora_alpha=recipe.get("peft.alpha", 16))
        if method == "dora":
            body["use_dora"] = True
        if method == "qlora":
            body.update(load_in_4bit=True, bnb_4bit_quant_type="nf4", use_bnb_nested_quant=True)
    elif method != "full":
        lines.append(f"# not carried over: [peft] method = {json.dumps(method)} (the trl CLI builds LoRA adapters only)")
    body.update(recipe.section("train"))
    lines += [f"{k}: {json.dumps(v)}" for k, v in body.items()]
    return "\n".join(lines) + "\n"
