"""Launch, inspect and stop runs. Shared by the CLI and the TUI; no UI, no torch.

prepare: create the run dir -> freeze the recipe -> write launch.json (state prepared; nothing runs).
queue: see workbench.core.queue (a prepared run waits there until the queue process calls ``start_queued``).
launch / start / resume: queue the run and start the runner (``python -m workbench.core.runner RUN_DIR``) in a
new session, output to files, argv lists only.
stop: stop.request (the trainer checkpoints and ends) -> SIGTERM to the process group -> SIGKILL, with timeouts
that never cut a checkpoint the trainer reports it is writing.
States and their transitions belong to workbench.core.lifecycle; this module only asks for them.
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

from workbench import __version__
from workbench.core import lifecycle
from workbench.core.atomic import read_json, write_json_atomic
from workbench.core.problems import BadInput, Problem
from workbench.core.rundir import FINAL_STATES, RunDir, boot_time, hostname

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
    hostfile = recipe.get("launch.hostfile")
    if isinstance(hostfile, str) and hostfile and recipe.resolve_path(hostfile).exists():
        frozen.set("launch.hostfile", str(recipe.resolve_path(hostfile)))  # the recipe's folder, not the cwd
    for key in ("data.path", "eval.data"):
        data = recipe.get(key)
        if isinstance(data, str) and data and recipe.resolve_path(data).exists():
            frozen.set(key, str(recipe.resolve_path(data)))
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
    """A run directory ready to start (frozen recipe, launch.json, config files, status prepared); nothing runs.

    Raises BadInput when the runs directory is unusable, DeepSpeed rejects the generated config, or the recipe's
    code (reward files, trust_remote_code models) is not approved as it is now; then no run directory is left behind.
    """
    try:
        rd = RunDir.create(runs_dir, recipe.name)
    except OSError as e:
        raise BadInput(Problem(str(runs_dir), "", f"cannot create a run directory: {e.strerror or e}",
                               "pass a writable --runs-dir (or set WORKBENCH_RUNS)"))
    try:
        frozen = freeze(recipe)
        from workbench.core import trust

        trust.seal(frozen, rd.path, runs_dir)  # approved code copied in, rewards.funcs name the copies
        plan = launch_plan(frozen, rd.path)
        check_deepspeed(plan, recipe.display_name)
        frozen.save(rd.recipe_path)
        for name, text in plan.files.items():
            (rd.path / name).write_text(text, encoding="utf-8")
        write_json_atomic(rd.launch_path, {
            "argv": plan.argv, "env": plan.env, "cwd": os.getcwd(), "host": hostname(), "python": sys.executable,
            "recipe_source": str(recipe.path) if recipe.path else None, "files": sorted(plan.files),
            "workbench_version": __version__, **({"vllm": plan.server} if plan.server else {}),
        })
        lifecycle.transition(rd, lifecycle.PREPARED, lifecycle.LAUNCHER, stage=frozen.stage, name=frozen.name,
                             model=frozen.get("model.path"), created=time.time(), host=hostname(),
                             **lifecycle.member_info(frozen.section("launch")))
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
        return _queue_and_start(rd)
    except BadInput:
        shutil.rmtree(rd.path, ignore_errors=True)
        raise


def _queue_and_start(rd: RunDir, **fields) -> Launched:
    lifecycle.transition(rd, lifecycle.QUEUED, lifecycle.LAUNCHER, **lifecycle.queued_fields(), **fields)
    return start_queued(rd)


def start_queued(rd: RunDir, env: dict | None = None) -> Launched:
    """Start the runner of a run that is queued (the run queue moved it there from waiting); ``env`` joins its
    launch env in launch.json (the queue's CUDA_VISIBLE_DEVICES), which the runner gives the trainer."""
    try:
        if env:
            info = launch_info(rd)
            info["env"] = {**info.get("env", {}), **env}
            write_json_atomic(rd.launch_path, info)
        proc = _start_runner(rd)
    except OSError as e:
        lifecycle.try_transition(rd, lifecycle.FAILED, lifecycle.READER, ended=time.time(),
                                 error=f"cannot start the run: {e.strerror or e}")
        raise BadInput(Problem(str(rd.path), "", f"cannot start the run: {e.strerror or e}", "check the machine"))
    rd.write_status(runner_pid=proc.pid, pgid=proc.pid)
    return Launched(rd, proc)


def start(rd: RunDir) -> Launched:
    """Start a prepared run (made by ``prepare``) here, under a runner."""
    st = status(rd)
    if st.get("state") != lifecycle.PREPARED:
        raise BadInput(Problem(str(rd.path), "", f"run {rd.id} is {st.get('display_state')}, not prepared",
                               "only a prepared run can be started; use `workbench resume` for a stopped one"))
    from workbench.core import trust

    trust.verify_run(rd.path)  # the approved code copies must be as they were when it was prepared
    return _queue_and_start(rd, runnerless=lifecycle.UNSET)


def latest_checkpoint(rd: RunDir) -> Path | None:
    """The newest complete checkpoint (half-written ones are skipped)."""
    return lifecycle.resume_checkpoint(rd)[0]


def resume(rd: RunDir) -> Launched:
    """Start a stopped/failed/killed/lost run again in the same run directory, from its last complete checkpoint.

    The trainer restores model, optimizer, scheduler and global step; it writes a ``resume`` event so readers
    drop the earlier attempt's rows past the checkpoint (charts show one line).
    """
    st = status(rd)
    state = st.get("state")
    if state == lifecycle.COMPLETED:
        raise BadInput(Problem(str(rd.path), "", f"run {rd.id} already completed",
                               "raise train.max_steps in a new run, e.g. model.path = \"run:ID\""))
    if state == lifecycle.PREPARED:
        raise BadInput(Problem(str(rd.path), "", f"run {rd.id} was never started", f"start it: workbench start {rd.id}"))
    if state == lifecycle.WAITING:
        raise BadInput(Problem(str(rd.path), "", f"run {rd.id} waits in the queue",
                               f"start it now: workbench queue start-now {rd.id}"))
    if state not in lifecycle.RESUMABLE:
        raise BadInput(Problem(str(rd.path), "", f"run {rd.id} is {st.get('display_state')}", "stop it before resuming"))
    ckpt, skipped = lifecycle.resume_checkpoint(rd)
    if ckpt is None:
        raise BadInput(Problem(str(rd.path), "", f"run {rd.id} has no complete checkpoint to resume from"
                               + (f" ({len(skipped)} half-written skipped)" if skipped else ""),
                               "start it again with `workbench run` (set train.save_steps to checkpoint)"))
    from workbench.core import trust

    trust.verify_run(rd.path)  # the approved code copies and model code must be as they were at launch
    rd.stop_request_path.unlink(missing_ok=True)
    notes = [f"skipped half-written {p.name} (no trainer_state.json)" for p in skipped]
    return _queue_and_start(rd, **lifecycle.fresh_attempt_fields(), resume_from=str(ckpt),
                            attempt=int(st.get("attempt", 1)) + 1, resume_notes=notes or lifecycle.UNSET,
                            created=time.time(), display_state=lifecycle.UNSET)


# -- status ----------------------------------------------------------------------------------------------------
def status(rd: RunDir) -> dict:
    """The run's status, settled (see lifecycle.status), with ``display_state``."""
    return lifecycle.status(rd)


def list_runs(runs_dir: Path) -> list[tuple[RunDir, dict]]:
    """Every run in the runs directory, newest first."""
    if not runs_dir.is_dir():
        return []
    out = []
    for p in sorted(runs_dir.iterdir(), reverse=True):
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
    """Ask the run to stop; escalate to SIGTERM, then SIGKILL of its process group. Returns the final status.

    Escalation waits (up to lifecycle.SAVE_GRACE_S) while the trainer reports it is saving, so a stop never
    destroys the checkpoint it asked for. A prepared run has nothing to stop.
    """
    st = status(rd)
    say = on_phase or (lambda msg: None)
    if st.get("state") == lifecycle.WAITING:
        from workbench.core import queue

        say(f"run {rd.id} was waiting in the queue: cancelled")
        return queue.cancel(rd)
    if st.get("state") == lifecycle.PREPARED:
        say(f"run {rd.id} was never started: start it (workbench start) or delete it")
        return st
    if st.get("state") in FINAL_STATES:
        return st
    request_stop(rd)
    say("stop requested: the trainer saves a checkpoint and ends")
    if _wait_final(rd, grace, say):
        return status(rd)
    st = status(rd)
    if st.get("host") not in (None, hostname()) or st.get("runnerless"):
        # its pids mean other processes here (or a Slurm job): never signal them
        say(f"no clean stop after {grace:.0f} s; the run lives on {st.get('host')}: run `workbench stop` there, "
            "or cancel its job (scancel)")
        return st
    say(f"no clean stop after {grace:.0f} s: sending SIGTERM to the run's processes")
    _signal_run(rd, st, signal.SIGTERM)
    if _wait_final(rd, term_grace, say):
        return status(rd)
    say(f"still alive after {term_grace:.0f} s: sending SIGKILL")
    _signal_run(rd, status(rd), signal.SIGKILL)
    _wait_final(rd, 5.0)
    return status(rd)


def _wait_final(rd: RunDir, timeout: float, say=None) -> bool:
    """Wait for a final state; the clock does not run while the trainer reports it is saving."""
    deadline = time.monotonic() + timeout
    told = False
    while True:
        st = status(rd)
        if st.get("state") in FINAL_STATES:
            return True
        if lifecycle.saving(st):
            deadline = max(deadline, time.monotonic() + 1.0)
            if say and not told:
                say("the trainer is writing a checkpoint: waiting for it")
                told = True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)


def _signal_run(rd: RunDir, st: dict, sig) -> None:
    """Signal the run's process group, and any of its processes outside it (checked against pid reuse). SIGTERM
    spares a vLLM server (the trainer may still generate the step it finishes; the runner ends the server after
    the trainer); SIGKILL takes it too."""
    pgid = st.get("pgid")
    if pgid and lifecycle.processes(rd, st):
        try:
            os.killpg(int(pgid), sig)
        except (ProcessLookupError, PermissionError):
            pass
    for pid in lifecycle.processes(rd, st, server=sig != signal.SIGTERM):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def delete(rd: RunDir) -> None:
    """Remove a run directory that has no live process (a prepared or finished run)."""
    st = status(rd)
    if st.get("state") in lifecycle.LIVE_STATES:
        raise BadInput(Problem(str(rd.path), "", f"run {rd.id} is {st.get('display_state')}", "stop it first"))
    if st.get("state") == lifecycle.WAITING:
        raise BadInput(Problem(str(rd.path), "", f"run {rd.id} waits in the queue",
                               f"cancel it first: workbench queue cancel {rd.id}"))
    shutil.rmtree(rd.path)


def launch_info(rd: RunDir) -> dict:
    return read_json(rd.launch_path, {}) or {}
