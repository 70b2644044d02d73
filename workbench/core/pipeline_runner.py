"""The pipeline runner: a small light process that runs one pipeline's stages in order and records how it ended.

    python -m workbench.core.pipeline_runner PIPE_DIR

Started by ``pipeline.launch_pipeline`` / ``resume_pipeline`` in its own session, so closing the terminal, the TUI
or the SSH connection never reaches it (it also ignores SIGHUP and SIGINT; SIGTERM is a stop request). From the
pipeline's current stage on, each stage's run is started through the supervisor (prepare, then start: the run's
status names the pipeline from its first moment) only after the previous stage's run COMPLETED; a run that ends
failed, stopped, killed or lost ends the pipeline in that state and later stages are not started. On resume, a
stage whose run still lives is waited for, one with a complete checkpoint is resumed, any other is started afresh
(the earlier run stays listed with the pipeline). The heartbeat is touched while it waits. States: the pipeline
section of core/lifecycle.py.

Test seam (read here and nowhere else): WORKBENCH_TEST_FAKE_TRAINER='{"trainer": FILE, "modes": {NAME: MODE}}' makes
each stage run ``python FILE MODE RUN_DIR`` (tests/fixtures/fake_trainer.py; MODE by the recipe's [run] name,
default "succeed") instead of the real trainer, as in-process tests do by replacing ``supervisor.launch_plan``.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from workbench.core import lifecycle, supervisor
from workbench.core.atomic import read_json
from workbench.core.pipedir import PipelineDir
from workbench.core.problems import BadInput, Problem
from workbench.core.rundir import FINAL_STATES, HEARTBEAT_EVERY, LIVE_STATES, RunDir, boot_time, hostname

TEST_TRAINER_ENV = "WORKBENCH_TEST_FAKE_TRAINER"
POLL_S = 0.5


def main(pipe_dir: str) -> int:
    pd = PipelineDir(pipe_dir)
    _use_fake_trainer_if_testing()
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, frame: pd.stop_request_path.write_text(f"{time.time():.3f}\n"))
    started = time.time()
    st = lifecycle.try_pipeline_transition(pd, lifecycle.RUNNING, lifecycle.PIPELINE_RUNNER, runner_pid=os.getpid(),
                                           host=hostname(), boot_time=boot_time(), started=started)
    if st is None:
        return 1  # settled before we got here: nothing to run
    pd.touch_heartbeat()
    allow_code = bool(read_json(pd.launch_path, {}).get("allow_code"))
    final, error = lifecycle.COMPLETED, None
    for step in range(int(st.get("stage") or 1), len(st["stages"]) + 1):
        name = st["stages"][step - 1].get("name")
        if pd.stop_requested():
            final = lifecycle.STOPPED
            break
        try:
            rd, process = start_stage(pd, step, allow_code)
        except BadInput as e:
            error = f"stage {step} ({name}) could not start: " + "; ".join(p.message for p in e.problems)
            lifecycle.record_stage(pd, step, state=lifecycle.FAILED, error=error)
            final = lifecycle.FAILED
            break
        end = wait_for(pd, step, rd, process)
        if end.get("state") != lifecycle.COMPLETED:
            final = end.get("state") or lifecycle.FAILED
            error = f"stage {step} ({name}) {final}: run {rd.id}" + (f": {end['error']}" if end.get("error") else "")
            break
        print(f"stage {step} ({name}) completed: run {rd.id}", flush=True)
    lifecycle.pipeline_finished(pd, final, started, error)
    print(f"pipeline {pd.id} {final}" + (f": {error}" if error else ""), flush=True)
    pd.touch_heartbeat()
    return 0


def start_stage(pd: PipelineDir, step: int, allow_code: bool) -> tuple[RunDir, subprocess.Popen | None]:
    """The run of stage ``step``, started (or found live, or completed, or resumed); BadInput if it cannot start."""
    st = pd.read_status()
    entry = st["stages"][step - 1]
    earlier = list(entry.get("earlier_runs") or [])
    if entry.get("run") and RunDir(pd.runs_dir / entry["run"]).exists():
        rd = RunDir(pd.runs_dir / entry["run"])
        state = supervisor.status(rd).get("state")
        if state == lifecycle.COMPLETED or state in LIVE_STATES:
            return rd, None  # done already, or still going (its pipeline runner was killed): wait for it
        if state == lifecycle.PREPARED:
            return rd, supervisor.start(rd).process
        if state in lifecycle.RESUMABLE and supervisor.latest_checkpoint(rd):
            launched = supervisor.resume(rd)
            lifecycle.record_stage(pd, step, state=lifecycle.QUEUED)
            print(f"stage {step} ({entry.get('name')}): run {rd.id} resumed from its checkpoint", flush=True)
            return rd, launched.process
        earlier.append(rd.id)  # nothing to resume from: a new run, the old one stays listed with the pipeline
    previous = st["stages"][step - 2].get("run") if step > 1 else None
    recipe = _linked_recipe(pd, entry, previous, allow_code)
    rd = supervisor.prepare(recipe, pd.runs_dir)
    rd.write_status(pipeline=pd.id, pipeline_name=st.get("name"), pipeline_step=step, parent=previous)
    lifecycle.record_stage(pd, step, run=rd.id, state=lifecycle.QUEUED, earlier_runs=earlier)
    launched = supervisor.start(rd)
    print(f"stage {step} ({entry.get('name')}): run {rd.id} started", flush=True)
    return rd, launched.process


def _linked_recipe(pd: PipelineDir, entry: dict, previous: str | None, allow_code: bool):
    from workbench.core import trust
    from workbench.core.pipeline import link
    from workbench.core.recipe import Recipe

    frozen = Recipe.load(pd.path / entry["recipe"])
    recipe = link(frozen, previous)
    # run:previous's model code (trust_remote_code) exists only now; the user consented to it at launch with
    # --allow-code. Anything else not approved as it is now is refused when the run is sealed (supervisor.prepare).
    linked_keys = {key for key in trust.MODEL_KEYS if frozen.get(key) == "run:previous"}
    pending = [i for i in trust.unapproved(recipe, pd.runs_dir) if i.key in linked_keys]
    if pending and not allow_code:
        raise BadInput([Problem(str(i.path or i.label), i.key, i.ask, "start the pipeline with --allow-code")
                        for i in pending])
    if pending:
        trust.approve(pending)
    return recipe


def wait_for(pd: PipelineDir, step: int, rd: RunDir, process: subprocess.Popen | None) -> dict:
    """The run's final status, mirrored into the stage's entry as it changes. A stop request of the pipeline is
    passed on to the run."""
    beat, seen = time.monotonic(), None
    while True:
        st = supervisor.status(rd)
        if st.get("state") != seen:
            seen = st.get("state")
            lifecycle.record_stage(pd, step, state=seen)
        if seen in FINAL_STATES:
            if process is not None:
                process.poll()  # reap the run's runner
            return st
        if pd.stop_requested() and not rd.stop_requested():
            supervisor.request_stop(rd)
        if time.monotonic() - beat >= HEARTBEAT_EVERY:
            pd.touch_heartbeat()
            beat = time.monotonic()
        if process is not None and process.poll() is None:
            try:
                process.wait(timeout=POLL_S)
            except subprocess.TimeoutExpired:
                pass
        else:
            time.sleep(POLL_S)


def _use_fake_trainer_if_testing() -> None:
    """The test seam of the module docstring."""
    raw = os.environ.get(TEST_TRAINER_ENV)
    if not raw:
        return
    spec = json.loads(raw)
    from workbench.core.launch import LaunchPlan

    def fake_plan(recipe, run_dir):
        mode = spec.get("modes", {}).get(recipe.name, "succeed")
        return LaunchPlan([sys.executable, spec["trainer"], mode, str(run_dir)], {"WORKBENCH_RUN_DIR": str(run_dir)})

    supervisor.launch_plan = fake_plan


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
