"""Exported shell and sbatch scripts: recipe values with newlines, quotes, $() and backticks stay data.

Each export is checked with `bash -n`, then run with stub srun / scontrol / python / env on PATH that record their
argv: no injected command runs, and the argv is exactly the trainer's.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import RECIPES, workbench_cmd
from workbench.core import launch, supervisor
from workbench.core.recipe import Recipe

# Each would run `touch PWN...` if it reached a shell as code.
NASTY = 'x"; touch PWN1; echo "\ntouch PWN2\n$(touch PWN3)`touch PWN4`\'; touch PWN5; \''
NASTY_DIR = '/tmp/run dir "q" \'s\' $(touch PWN6) `touch PWN7`\ntouch PWN8'
STUB = """#!/bin/bash
printf '%s\\0' "$@" > "$STUB_LOG/{name}.argv"
{tail}
"""
STUB_TAILS = {
    "env": "",
    "python": "",
    "scontrol": 'printf "node-a\\nnode-b\\n"',
    "srun": 'while [[ "$1" == --* ]]; do shift; done\nexec "$@"',
}


@pytest.fixture
def stubs(tmp_path):
    """A work dir for the scripts, a stub bin dir first on PATH, and a reader of the argv each stub recorded."""
    bin_dir, log, work = tmp_path / "bin", tmp_path / "log", tmp_path / "work"
    for d in (bin_dir, log, work):
        d.mkdir()
    for name, tail in STUB_TAILS.items():
        (bin_dir / name).write_text(STUB.format(name=name, tail=tail))
        (bin_dir / name).chmod(0o755)

    def run(script: Path, **env) -> subprocess.CompletedProcess:
        assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0, script.read_text()
        full = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "STUB_LOG": str(log), **env}
        return subprocess.run(["bash", str(script)], cwd=work, env=full, capture_output=True, text=True, timeout=60)

    def argv(name: str) -> list[str] | None:
        f = log / f"{name}.argv"
        return f.read_bytes().decode().split("\0")[:-1] if f.exists() else None

    run.argv, run.work = argv, work
    return run


def export(tmp_path, to: str, overrides: dict) -> Path:
    out = tmp_path / f"export-{to}"
    sets = [a for k, v in overrides.items() for a in ("--set", f"{k}={json.dumps(v)}")]
    proc = subprocess.run(workbench_cmd("export", str(RECIPES / "grpo-tiny.toml"), "--to", to, "-o", str(out), *sets),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return out


def nothing_injected(work: Path) -> None:
    assert not list(work.glob("PWN*")) and not list(Path("/tmp").glob("PWN*")), "an injected command ran"


def hostfile(tmp_path) -> str:
    f = tmp_path / 'hosts "q" \'s\' $(touch PWN9) `touch PWN10`\nx'
    f.write_text("node-a slots=2\nnode-b slots=2\n")
    return str(f)


BACKENDS = {
    "python": {},
    "torchrun": {"launch.backend": "torchrun", "launch.num_processes": 2, "launch.num_machines": 2,
                 "launch.machine_rank": 1, "launch.main_address": NASTY},
    "accelerate": {"launch.backend": "accelerate", "launch.num_processes": 2, "launch.num_machines": 2,
                   "launch.main_address": NASTY},
    "deepspeed": {"launch.backend": "deepspeed", "launch.zero_stage": 2, "launch.num_processes": 2},
    "deepspeed-hostfile": {"launch.backend": "deepspeed", "launch.zero_stage": 2, "launch.num_machines": 2,
                           "launch.hostfile": None, "launch.main_address": NASTY},
}


@pytest.mark.parametrize("backend", BACKENDS)
def test_shell_export_quotes_every_value_and_expands_run_dir(tmp_path, stubs, backend):
    overrides = {"run.name": NASTY, **BACKENDS[backend]}
    if "launch.hostfile" in overrides:
        overrides["launch.hostfile"] = hostfile(tmp_path)
    script = export(tmp_path, "shell", overrides)
    proc = stubs(script, RUN_DIR=NASTY_DIR)
    assert proc.returncode == 0, proc.stderr
    nothing_injected(stubs.work)
    recipe = Recipe.load(RECIPES / "grpo-tiny.toml")
    for k, v in overrides.items():
        recipe.set(k, v)
    plan = launch.plan(supervisor.freeze(recipe), Path(NASTY_DIR))
    assert stubs.argv("env") == [f"{k}={v}" for k, v in plan.env.items()] + plan.argv
    if backend == "accelerate":
        assert f"{NASTY_DIR}/accelerate.yaml" in stubs.argv("env")


def test_shell_export_needs_run_dir(tmp_path, stubs):
    proc = stubs(export(tmp_path, "shell", {}))
    assert proc.returncode != 0 and "RUN_DIR" in proc.stderr and stubs.argv("env") is None


def test_sbatch_export_keeps_directives_first_and_values_as_data(tmp_path, stubs):
    script = export(tmp_path, "sbatch", {"run.name": NASTY, "launch.backend": "torchrun", "launch.num_processes": 4,
                                         "launch.num_machines": 2, "launch.main_address": NASTY})
    lines = script.read_text().splitlines()
    first_command = next(i for i, ln in enumerate(lines) if ln.strip() and not ln.startswith("#"))
    directives = [i for i, ln in enumerate(lines) if ln.startswith("#SBATCH")]
    assert lines[0] == "#!/bin/bash" and directives == list(range(1, len(directives) + 1))
    assert directives[-1] < first_command, "sbatch stops reading directives at the first command"
    (job,) = [ln for ln in lines if ln.startswith("#SBATCH --job-name=")]
    assert re.fullmatch(r"#SBATCH --job-name=[A-Za-z0-9_.-]+", job), job
    proc = stubs(script, RUN_DIR=NASTY_DIR, SLURM_JOB_NODELIST="node-[a-b]", SLURM_NODEID="1",
                 WORKBENCH_PYTHON="python")
    assert proc.returncode == 0, proc.stderr
    nothing_injected(stubs.work)
    assert stubs.argv("scontrol") == ["show", "hostnames", "node-[a-b]"]
    assert stubs.argv("srun")[:3] == ["--kill-on-bad-exit=1", "bash", "-c"]
    assert stubs.argv("python") == ["-m", "torch.distributed.run", "--nnodes=2", "--node_rank=1", "--nproc_per_node=4",
                                    "--master_addr=node-a", "--master_port=29500", "-m", "workbench.train", NASTY_DIR]


def test_job_name_is_one_safe_token():
    assert launch.job_name(NASTY) == "x-touch-PWN1-echo-touch-PWN2-touch-PWN3-touch-PWN4-touch-PWN5"
    assert launch.job_name("\n$()`'\"") == "workbench"
    assert launch.job_name("grpo-tiny") == "grpo-tiny"
