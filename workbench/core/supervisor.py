"""Launch, inspect and stop runs. Shared by the CLI and the TUI; no UI, no torch.

launch: validate (by the caller) -> create the run dir -> freeze the recipe -> write launch.json -> start the
runner (``python -m workbench.core.runner RUN_DIR``) in a new session, output to files, argv lists only.
stop: stop.request (the trainer checkpoints and ends) -> SIGTERM to the process group -> SIGKILL, with timeouts.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from workbench.core.atomic import read_json, write_json_atomic
from workbench.core.problems import BadInput, Problem
from workbench.core.rundir import FINAL_STATES, RunDir, boot_time, hostname, pid_alive

if TYPE_CHECKING:  # launching needs these; listing and watching runs (the TUI's start) does not
    from workbench.core.launch import LaunchPlan
    from workbench.core.recipe import Recipe

# Environment every trainer gets (recorded in launch.json as the env delta).


def freeze(recipe: Recipe) -> Recipe:
    """A copy with every path made absolute, so the run dir's recipe means the same from any folder."""
    from workbench.core.models import parse_model_ref
    from workbench.core.recipe import Recipe
    from workbench.core.rewards import parse_reward_ref

    frozen = Recipe.parse(recipe.dumps(), recipe.path)
    for key in ("model.path", "model.teacher", "model.reward_model"):
        model = recipe.get(key)
        if isinstance(model, str) and model:
            ref = parse_model_ref(model, recipe.resolve_path)
            if ref.kind == "local":
                frozen.set(key, ref.value)
    data = recipe.get("data.path")
    if isinstance(data, str) and recipe.resolve_path(data).exists():
        frozen.set("data.path", str(recipe.resolve_path(data)))
    funcs = recipe.get("rewards.funcs")
    if isinstance(funcs, list) and funcs:
        out = []
        for raw in funcs:
            ref = parse_reward_ref(raw, recipe.resolve_path) if isinstance(raw, str) else None
            out.append(f"{ref.file}:{ref.function}" if ref and ref.file else raw)
        frozen.set("rewards.funcs", out)
    return frozen


def schema_defaults(recipe: Recipe) -> dict:
    """The stage's trl config fields (defaults for keys the recipe leaves unset); {} when unavailable."""
    from workbench.core import schema
    from workbench.core.stages import STAGES

    stage = STAGES.get(recipe.stage)
    try:
        return schema.stage_fields(stage.config_class) if stage and stage.config_class else {}
    except schema.SchemaUnavailable:
        return {}


def launch_plan(recipe: Recipe, run_dir: Path) -> LaunchPlan:
    """argv, env delta and config files of a frozen recipe (a seam the tests replace with a fake trainer)."""
    from workbench.core import launch as launch_mod

    return launch_mod.plan(recipe, run_dir, schema_defaults(recipe) if launch_mod.uses_deepspeed(recipe) else {})


def check_deepspeed(plan: LaunchPlan, where: str) -> None:
    """Validate a generated DeepSpeed JSON with DeepSpeed's own config class, in a child (deepspeed is heavy)."""
    text = plan.files.get("ds_config.json")
    if text is None:
        return
    proc = subprocess.run([sys.executable, "-m", "workbench.train.dscheck"], input=text, capture_output=True,
                          text=True, timeout=120)
    if proc.returncode != 0:
        last = (proc.stdout.strip() or proc.stderr.strip() or "unknown error").splitlines()[-1]
        raise BadInput(Problem(where, "launch", f"DeepSpeed rejects the generated config: {last}",
                               "check [launch] zero_stage / offload_* and the batch settings"))


def _start_runner(rd: RunDir) -> subprocess.Popen:
    """The runner in a new session (SIGHUP of this terminal never reaches it), output to runner.log."""
    with open(rd.runner_log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "workbench.core.runner", str(rd.path)],
                                start_new_session=True, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, close_fds=True)


@dataclass
class Launched:
    run: RunDir
    process: subprocess.Popen  # the runner; keep it to reap it (poll) if this process lives on


def prepare(recipe: Recipe, runs_dir: Path) -> RunDir:
    """A run directory ready to start (frozen recipe, launch.json, config files, status queued); nothing runs.

    Raises BadInput when the runs directory is unusable or DeepSpeed rejects the generated config; then no run
    directory is left behind.
    """
    try:
        rd = RunDir.create(runs_dir, recipe.name)
    except OSError as e:
        raise BadInput(Problem(str(runs_dir), "", f"cannot create a run directory: {e.strerror or e}",
                               "pass a writable --runs-dir (or set WORKBENCH_RUNS)"))
    try:
        frozen = freeze(recipe)
        plan = launch_plan(frozen, rd.path)
        check_deepspeed(plan, recipe.display_name)
        frozen.save(rd.recipe_path)
        for name, text in plan.files.items():
            (rd.path / name).write_text(text, encoding="utf-8")
        write_json_atomic(rd.launch_path, {
            "argv": plan.argv, "env": plan.env, "cwd": os.getcwd(), "host": hostname(), "python": sys.executable,
            "recipe_source": str(recipe.path) if recipe.path else None, "files": sorted(plan.files),
        })
        rd.write_status(state="queued", stage=frozen.stage, name=frozen.name, model=frozen.get("model.path"),
                        created=time.time(), host=hostname(), boot_time=boot_time())
    except BaseException as e:
        shutil.rmtree(rd.path, ignore_errors=True)  # nothing half-made is left behind
        if isinstance(e, OSError):
            raise BadInput(Problem(str(runs_dir), "", f"cannot write the run directory: {e.strerror or e}",
                                   "free some space or pass another --runs-dir"))
        raise
    return rd


def launch(recipe: Recipe, runs_dir: Path) -> Launched:
    """Start a validated recipe as a detached run."""
    rd = prepare(recipe, runs_dir)
    try:
        proc = _start_runner(rd)
    except OSError as e:
        shutil.rmtree(rd.path, ignore_errors=True)
        raise BadInput(Problem(str(runs_dir), "", f"cannot start the run: {e.strerror or e}", "check the machine"))
    rd.write_status(runner_pid=proc.pid, pgid=proc.pid)
    return Launched(rd, proc)


def latest_checkpoint(rd: RunDir) -> Path | None:
    ckpts = [p for p in rd.checkpoints.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return max(ckpts, key=lambda p: int(p.name.split("-")[-1])) if ckpts else None


def resume(rd: RunDir) -> Launched:
    """Start a stopped/failed/killed run again in the same run directory, from its last checkpoint.

    The trainer restores model, optimizer, scheduler and global step; it writes a ``resume`` event so readers
    drop the earlier attempt's rows past the checkpoint (charts show one line).
    """
    st = status(rd)
    if st.get("state") not in FINAL_STATES:
        raise BadInput(Problem(str(rd.path), "", f"run {rd.id} is {st.get('state')}", "stop it before resuming"))
    if st.get("state") == "completed":
        raise BadInput(Problem(str(rd.path), "", f"run {rd.id} already completed",
                               "raise train.max_steps in a new run, e.g. model.path = \"run:ID\""))
    ckpt = latest_checkpoint(rd)
    if ckpt is None:
        raise BadInput(Problem(str(rd.path), "", f"run {rd.id} has no checkpoint to resume from",
                               "start it again with `workbench run` (set train.save_steps to checkpoint)"))
    rd.stop_request_path.unlink(missing_ok=True)
    attempt = int(st.get("attempt", 1)) + 1
    for key in ("outcome", "error", "error_type", "hint", "signal", "note", "exit_code", "ended", "duration"):
        st.pop(key, None)
    st.pop("display_state", None)
    st.update(state="queued", resume_from=str(ckpt), attempt=attempt, created=time.time(), host=hostname(),
              boot_time=boot_time())
    write_json_atomic(rd.status_path, st)
    proc = _start_runner(rd)
    rd.write_status(runner_pid=proc.pid, pgid=proc.pid)
    return Launched(rd, proc)


# -- status ----------------------------------------------------------------------------------------------------
def status(rd: RunDir) -> dict:
    """The run's status, settled: a live state whose process tree is gone becomes killed (or lost after a reboot).

    Adds ``display_state``: 'stopping' while a requested stop is in progress.
    """
    st = rd.read_status()
    state = st.get("state")
    if state in ("queued", "running") and st.get("host") in (None, hostname()):
        pid = st.get("runner_pid")
        if pid and not pid_alive(pid) and not _just_started(st):
            st = _settle(rd, st)
    st["display_state"] = "stopping" if st.get("state") == "running" and rd.stop_requested() else st.get("state")
    return st


def _just_started(st: dict) -> bool:
    return st.get("state") == "queued" and time.time() - float(st.get("created", 0)) < 2.0


def _settle(rd: RunDir, st: dict) -> dict:
    fresh = rd.read_status()  # the runner may have written the final state meanwhile
    if fresh.get("state") in FINAL_STATES:
        return fresh
    if rd.has_event("train_end"):
        state, error = ("stopped" if rd.stop_requested() else "completed"), None
    else:
        bt, hb = boot_time(), rd.heartbeat_age()
        rebooted = bt is not None and st.get("boot_time") is not None and bt > float(st["boot_time"]) + 1
        state = "lost" if rebooted else ("stopped" if rd.stop_requested() else "killed")
        error = ("the machine restarted while the run was live" if rebooted else
                 None if state == "stopped" else "the process tree disappeared without finishing (SIGKILL?)")
        if hb is not None and state == "lost":
            error += f"; last heartbeat {hb:.0f} s ago"
    return rd.write_status(state=state, error=error, ended=time.time())


def list_runs(runs_dir: Path) -> list[tuple[RunDir, dict]]:
    if not runs_dir.is_dir():
        return []
    out = []
    for p in sorted(runs_dir.iterdir()):
        rd = RunDir(p)
        if p.is_dir() and rd.exists():
            out.append((rd, status(rd)))
    return out


def find_run(runs_dir: Path, ref: str) -> RunDir:
    """A run by id, unique id prefix, unique name suffix, or path; 'last' is the newest."""
    direct = Path(ref)
    if direct.is_dir() and RunDir(direct).exists():
        return RunDir(direct.resolve())
    runs = [rd for rd, _ in list_runs(runs_dir)] if runs_dir.is_dir() else []
    if ref in ("last", "latest") and runs:
        return max(runs, key=lambda r: r.read_status().get("created", 0))
    exact = [rd for rd in runs if rd.id == ref]
    matches = exact or [rd for rd in runs if rd.id.startswith(ref)] or [rd for rd in runs if ref in rd.id]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise BadInput(Problem(str(runs_dir), "", f"no run '{ref}' in {runs_dir}",
                               "see `workbench ls` for run ids (or pass --runs-dir)"))
    raise BadInput(Problem(str(runs_dir), "", f"'{ref}' matches {len(matches)} runs: "
                           + ", ".join(r.id for r in matches[:5]), "give more of the run id"))


# -- stop ------------------------------------------------------------------------------------------------------
def request_stop(rd: RunDir) -> None:
    rd.stop_request_path.write_text(f"{time.time():.3f}\n")


def stop(rd: RunDir, grace: float = 60.0, term_grace: float = 10.0, on_phase=None) -> dict:
    """Ask the run to stop; escalate to SIGTERM, then SIGKILL of its process group. Returns the final status."""
    st = status(rd)
    if st.get("state") in FINAL_STATES:
        return st
    say = on_phase or (lambda msg: None)
    request_stop(rd)
    say("stop requested: the trainer saves a checkpoint and ends")
    if _wait_final(rd, grace):
        return status(rd)
    if st.get("host") not in (None, hostname()):  # its pids mean other processes here: never signal them
        say(f"no clean stop after {grace:.0f} s; the run lives on {st['host']}: run `workbench stop` there to "
            "escalate")
        return status(rd)
    pgid = st.get("pgid") or st.get("runner_pid")
    say(f"no clean stop after {grace:.0f} s: sending SIGTERM to process group {pgid}")
    _killpg(pgid, signal.SIGTERM)
    if _wait_final(rd, term_grace):
        return status(rd)
    say(f"still alive after {term_grace:.0f} s: sending SIGKILL")
    _killpg(pgid, signal.SIGKILL)
    if not _wait_final(rd, 5.0):
        rd.write_status(state="stopped", error="stopped with SIGKILL", ended=time.time())
    return status(rd)


def _wait_final(rd: RunDir, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if status(rd).get("state") in FINAL_STATES:
            return True
        time.sleep(0.2)
    return status(rd).get("state") in FINAL_STATES


def _killpg(pgid, sig) -> None:
    if not pgid:
        return
    try:
        os.killpg(int(pgid), sig)
    except (ProcessLookupError, PermissionError):
        pass


def launch_info(rd: RunDir) -> dict:
    return read_json(rd.launch_path, {}) or {}
