"""Faults in a pipeline (two fake stages under the real pipeline runner and run runners): signals to the pipeline
runner, and to a stage's trainer or its whole process group, at a random stage and step.

The pipeline ends in an honest state within seconds (killed, stopped, or completed when the signal is one it
ignores), a later stage never starts before the one before it completed, and `pipeline-resume` goes on from the
stage it stopped at (its run resumed from its checkpoint, or waited for if it still lives) to the end: every
stage's run completed at max_steps with one continuous line of metrics, nothing left running.
"""
from __future__ import annotations

import json
import os
import signal
import time

import pytest

from tests.conftest import ASSETS
from tests.core.fakes import FAKE
from tests.faults.harness import FINAL_WITHIN_S, Run, RunLost
from workbench.core import lifecycle, pipeline, supervisor
from workbench.core.pipeline_runner import TEST_TRAINER_ENV
from workbench.core.rundir import FINAL_STATES, RunDir

pytestmark = pytest.mark.e2e

STAGES = (("s1", 25), ("s2", 20))  # (name, max_steps); a checkpoint every 5 steps
SAVE_STEPS = 5


class Pipe:
    def __init__(self, launched):
        self.pd, self.process = launched.pipeline, launched.process
        self.runs: dict[int, Run] = {}

    def stage_run(self, step: int) -> Run:
        if step not in self.runs:
            run_id = self.pd.read_status()["stages"][step - 1]["run"]
            self.runs[step] = Run(RunDir(self.pd.runs_dir / run_id), STAGES[step - 1][1], SAVE_STEPS, 0.02)
        return self.runs[step]

    def wait_stage_step(self, step: int, at: int) -> Run:
        deadline = time.monotonic() + 60
        while not self.pd.read_status()["stages"][step - 1].get("run"):
            assert time.monotonic() < deadline, f"stage {step} never started"
            time.sleep(0.02)
        run = self.stage_run(step)
        run.wait_step(at)
        return run

    def wait_final(self, within: float) -> dict:
        deadline = time.monotonic() + within
        while (st := pipeline.pipeline_status(self.pd))["state"] not in FINAL_STATES:
            if time.monotonic() > deadline:
                raise RunLost(f"pipeline still {st['state']} {within:.0f} s later: {st}")
            time.sleep(0.05)
        self.process.poll()
        return st

    def check_ended(self, expected: str, within: float = FINAL_WITHIN_S) -> dict:
        st = self.wait_final(within)
        if st["state"] != expected:
            raise RunLost(f"pipeline ended {st['state']}, expected {expected}: {st}")
        started = [s for s in st["stages"] if s.get("run")]
        for before, after in zip(started, started[1:]):
            if before["state"] != "completed":
                raise RunLost(f"stage {after['name']} started although {before['name']} is {before['state']}")
        deadline = time.monotonic() + 5  # it writes its last word, then exits
        while lifecycle.pipeline_alive(self.pd, self.pd.read_status()):
            assert time.monotonic() < deadline, "the pipeline runner lives on after its end"
            time.sleep(0.05)
        return st

    def resume_to_end(self) -> bool:
        try:
            got = pipeline.resume_pipeline(self.pd)
        except pipeline.BadInput as e:
            raise RunLost(f"pipeline-resume refused: {e}") from e
        self.process = got.process
        self.check_ended("completed", within=FINAL_WITHIN_S + 30)
        self.check_all_stages()
        return True

    def completed_first(self, fault, what: str = "the pipeline") -> bool:
        """Whether the pipeline completed before the fault reached it (a loaded machine, its last stage near its
        end): then every stage is checked completed, in order, and the tally says so."""
        if pipeline.pipeline_status(self.pd)["state"] != "completed":
            return False
        fault.fault += f" ({what} completed first)"
        self.check_ended("completed")
        self.check_all_stages()
        return True

    def check_all_stages(self) -> None:
        st = self.pd.read_status()
        if [s["state"] for s in st["stages"]] != ["completed"] * len(STAGES):
            raise RunLost(f"stages {[s['state'] for s in st['stages']]}")
        for step in range(1, len(STAGES) + 1):
            run = self.stage_run(step)
            run.check_ended("completed", supervisor.status(run.rd))
            run.check_continuous()
        runs = [RunDir(self.pd.runs_dir / s["run"]).read_status() for s in st["stages"]]
        for before, after in zip(runs, runs[1:]):
            if after["created"] < before["ended"]:
                raise RunLost("a stage's run was made before the stage before it ended")


@pytest.fixture
def pipes(runs_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(TEST_TRAINER_ENV, json.dumps({"trainer": str(FAKE), "modes": {n: "steps" for n, _ in STAGES}}))
    for key, value in (("FAKE_STEP_S", "0.02"), ("FAKE_SAVE_S", "0.05"), ("FAKE_LOAD_S", "0.05")):
        monkeypatch.setenv(key, value)
    made: list[Pipe] = []

    def start() -> Pipe:
        folder = tmp_path / f"p{len(made)}"
        folder.mkdir()
        for i, (name, max_steps) in enumerate(STAGES, 1):
            model = "builtin:tiny-lm" if i == 1 else "run:previous"
            (folder / f"{i:02d}-{name}.toml").write_text(
                f'[run]\nname = "{name}"\nstage = "grpo"\n\n[model]\npath = "{model}"\n\n'
                f'[data]\npath = "{ASSETS / "arith-prompts.jsonl"}"\n\n[rewards]\nfuncs = ["format"]\n\n'
                f'[train]\nnum_generations = 4\nmax_steps = {max_steps}\nsave_steps = {SAVE_STEPS}\n')
        pipe = Pipe(pipeline.launch_pipeline(pipeline.load_pipeline(folder, runs_dir), runs_dir))
        made.append(pipe)
        return pipe

    yield start
    for pd, st in pipeline.list_pipelines(runs_dir):
        if lifecycle.pipeline_alive(pd, st):
            os.kill(int(st["runner_pid"]), signal.SIGKILL)
    for rd, st in supervisor.list_runs(runs_dir):
        for pid in lifecycle.processes(rd, st):
            os.kill(pid, signal.SIGKILL)
    for pipe in made:
        pipe.process.poll()


def random_point(rng, early: bool = False) -> tuple[int, int]:
    """A stage and a step past its first checkpoint (in its first half if ``early``)."""
    step = rng.randint(1, len(STAGES))
    max_steps = STAGES[step - 1][1]
    return step, rng.randint(SAVE_STEPS + 1, max_steps // 2 + 1 if early else max_steps - 3)


def test_sighup_and_sigint_to_the_pipeline_runner_are_ignored(pipes, tally, rng):
    pipe = pipes()
    step, at = random_point(rng, early=True)  # room for both signals before the last stage ends
    pipe.wait_stage_step(step, at)
    runner = int(pipe.pd.read_status()["runner_pid"])
    with tally.fault(f"SIGHUP to the pipeline runner at stage {step} step {at}") as fault:
        os.kill(runner, signal.SIGHUP)
        time.sleep(0.3)
        if pipe.completed_first(fault):  # the last stage finished within the 0.3 s
            return
        st = pipe.pd.read_status()
        assert st["state"] == "running" and lifecycle.pipeline_alive(pipe.pd, st), st
    with tally.fault(f"SIGINT to the pipeline runner at stage {step}"):
        os.kill(runner, signal.SIGINT)
        pipe.check_ended("completed", within=FINAL_WITHIN_S + 30)
        pipe.check_all_stages()


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGTERM"])
def test_signal_to_the_pipeline_runner(pipes, tally, rng, sig, monkeypatch):
    if sig == "SIGTERM":
        monkeypatch.setenv("FAKE_STEP_S", "0.05")  # the runner passes a stop on within its 0.5 s poll
    pipe = pipes()
    step, at = random_point(rng, early=True)
    run = pipe.wait_stage_step(step, at)
    with tally.fault(f"{sig} to the pipeline runner at stage {step} step {at}") as fault:
        os.kill(int(pipe.pd.read_status()["runner_pid"]), getattr(signal, sig))
        if sig == "SIGKILL":  # settled killed; the stage's run is not touched and trains on to its end
            pipe.wait_final(FINAL_WITHIN_S)
            if pipe.completed_first(fault):
                return
            st = pipe.check_ended("killed")
            assert run.rd.id in st["error"]
            run.check_ended("completed", run.wait_done())
        else:  # SIGTERM is the pipeline's stop: the run checkpoints and stops, later stages do not start
            pipe.wait_final(FINAL_WITHIN_S)
            if supervisor.status(run.rd)["state"] == "completed":  # it ended before the stop reached it
                if pipe.completed_first(fault, "its stage and the pipeline"):
                    return
                fault.fault += " (its stage completed first)"
                run.check_ended("completed", supervisor.status(run.rd))
            else:
                run.check_ended("stopped", supervisor.status(run.rd))
                run.stop_checkpoint_is_at_the_stop()
            st = pipe.check_ended("stopped")
        assert sum(1 for s in st["stages"] if s.get("run")) == step, "no later stage started"
        fault.resumed_to_max = pipe.resume_to_end()


@pytest.mark.parametrize("sig,target", [("SIGKILL", "trainer"), ("SIGTERM", "trainer"), ("SIGKILL", "group"),
                                        ("SIGHUP", "trainer")])
def test_signal_to_a_stage(pipes, tally, rng, sig, target):
    pipe = pipes()
    step, at = random_point(rng)
    run = pipe.wait_stage_step(step, at)
    with tally.fault(f"{sig} to the {target} of pipeline stage {step} at step {at}") as fault:
        run.inject(sig, target)
        if sig == "SIGHUP":
            pipe.check_ended("completed", within=FINAL_WITHIN_S + 30)
            pipe.check_all_stages()
            return
        want = "killed" if sig == "SIGKILL" else "stopped"
        st = pipe.check_ended(want)
        run.check_ended(want, supervisor.status(run.rd))
        assert st["stages"][step - 1]["state"] == want
        assert sum(1 for s in st["stages"] if s.get("run")) == step, "no later stage started"
        fault.resumed_to_max = pipe.resume_to_end()
        assert run.rd.read_status()["attempt"] == 2, "the stage's run resumed in its own directory"
