"""Runs of the fake trainer's ``steps`` mode (or of a real recipe) under the real supervisor and runner, faults
injected into them, and the checks that nothing was lost: an honest final state within seconds, no process of the
run left behind, and a resume from the last complete checkpoint that reaches max_steps with one continuous line of
metrics.

A check that the run's state or its resume went wrong raises ``RunLost`` (the tally counts it); any other failed
check (an orphaned process, a fault that did not happen) is a plain AssertionError.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from tests.conftest import ASSETS
from tests.core.fakes import FAKE, alive
from workbench.core import lifecycle, supervisor
from workbench.core.launch import LaunchPlan
from workbench.core.metrics import read_history
from workbench.core.problems import BadInput
from workbench.core.recipe import Recipe
from workbench.core.rundir import FINAL_STATES, RunDir

FINAL_WITHIN_S = 10.0  # after a fault that ends an attempt, its state is final within this
START_WITHIN_S = 30.0  # a launch or resume reaches its first steps within this (a loaded 2-core machine)

SIGNALS = {s: getattr(signal, s) for s in ("SIGKILL", "SIGTERM", "SIGHUP", "SIGINT")}
TARGETS = ("trainer", "runner", "group")


class RunLost(AssertionError):
    """The run's state is wrong, or it could not be resumed although a complete checkpoint existed."""


def expected_state(sig: str, target: str) -> str:
    """What an honest run ends as after one signal during training (docs/design.md, Processes)."""
    if sig in ("SIGHUP", "SIGINT"):
        return "completed"  # the runner ignores both and its trainer inherits that: the terminal never matters
    if target == "runner" and sig == "SIGKILL":
        return "completed"  # the orphaned trainer trains on; a reader settles it from its outcome
    # SIGTERM (to the runner it is passed on to the trainer): a checkpoint at that step, then train_end
    return "killed" if sig == "SIGKILL" else "stopped"


def fake_recipe(max_steps: int, save_steps: int) -> Recipe:
    return Recipe.parse(f'[run]\nname = "fault"\nstage = "grpo"\n\n[model]\npath = "builtin:tiny-lm"\n\n'
                        f'[data]\npath = "{ASSETS / "arith-prompts.jsonl"}"\n\n[rewards]\nfuncs = ["format"]\n\n'
                        f'[train]\nnum_generations = 4\nmax_steps = {max_steps}\nsave_steps = {save_steps}\n')


class Runs:
    """Launches (or prepares) runs in runs_dir, of the fake trainer or of a real recipe; ``cleanup`` leaves no
    process of theirs behind."""

    def __init__(self, runs_dir: Path, monkeypatch):
        self.runs_dir, self.monkeypatch = runs_dir, monkeypatch
        self.runs: list[Run] = []

    def _plan(self, step_s: float, save_s: float, load_s: float, disk_full: Path | None, slow: dict | None = None):
        env = {"FAKE_STEP_S": str(step_s), "FAKE_SAVE_S": str(save_s), "FAKE_LOAD_S": str(load_s),
               "FAKE_SLOW_SAVE": ",".join(f"{k}={v}" for k, v in (slow or {}).items())}
        if disk_full is not None:
            env["FAKE_DISK_FULL"] = str(disk_full)
        self.monkeypatch.setattr(supervisor, "launch_plan", lambda recipe, run_dir: LaunchPlan(
            [sys.executable, str(FAKE), "steps", str(run_dir)], {"WORKBENCH_RUN_DIR": str(run_dir), **env}))

    def launch(self, max_steps: int = 30, save_steps: int = 5, *, step_s: float = 0.02, save_s: float = 0.05,
               load_s: float = 0.1, disk_full: Path | None = None, slow: dict | None = None) -> Run:
        """A detached fake run; ``slow`` maps a checkpoint step (or "final") to the seconds its save takes."""
        self._plan(step_s, save_s, load_s, disk_full, slow)
        got = supervisor.launch(fake_recipe(max_steps, save_steps), self.runs_dir)
        run = Run(got.run, max_steps, save_steps, step_s)
        run.runners.append(got.process)
        self.runs.append(run)
        return run

    def launch_recipe(self, recipe: Recipe, step_s: float = 1.0) -> Run:
        """A real run (the real trainer) of a recipe; step_s is only a generous guess for the waits."""
        got = supervisor.launch(recipe, self.runs_dir)
        run = Run(got.run, int(recipe.get("train.max_steps")), int(recipe.get("train.save_steps")), step_s)
        run.runners.append(got.process)
        self.runs.append(run)
        return run

    def prepare(self, max_steps: int = 30, save_steps: int = 5, *, step_s: float = 0.02) -> Run:
        self._plan(step_s, 0.05, 0.1, None)
        run = Run(supervisor.prepare(fake_recipe(max_steps, save_steps), self.runs_dir), max_steps, save_steps, step_s)
        self.runs.append(run)
        return run

    def cleanup(self) -> None:
        for run in self.runs:
            for pid in run.live_pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            for proc in run.runners:
                if proc.poll() is None:
                    proc.kill()
                proc.wait(timeout=10)


class Run:
    def __init__(self, rd: RunDir, max_steps: int, save_steps: int, step_s: float):
        self.rd, self.max_steps, self.save_steps, self.step_s = rd, max_steps, save_steps, step_s
        self.path = str(rd.path)
        self.runners: list = []  # Popen of runners this process started (reaped here)
        self.seen: set[int] = set()  # every pid of the run seen so far
        self.resumes = 0  # resume attempts started
        self.resume_events = 0  # resume events the current attempt's rows come after (one per attempt that trained)

    # -- watching --------------------------------------------------------------------------------------------
    def status(self) -> dict:
        return supervisor.status(self.rd)

    def attempt_step(self) -> int | None:
        """The step the current attempt reached (None while its resume event is not written yet)."""
        hist = read_history(self.rd.metrics_path)
        if sum(e.get("event") == "resume" for e in hist.events) != self.resume_events:
            return None
        return hist.step

    def wait_step(self, step: int, timeout: float | None = None) -> int:
        """Wait until the current attempt has logged ``step``; returns the step it is at."""
        deadline = time.monotonic() + (timeout or START_WITHIN_S + step * self.step_s * 4)
        while time.monotonic() < deadline:
            now = self.attempt_step()
            if now is not None and now >= step:
                self._remember()
                return now
            st = self.rd.read_status()
            if st.get("state") in FINAL_STATES:
                raise AssertionError(f"the run ended ({st.get('state')}: {st.get('error')}) before step {step}")
            time.sleep(0.01)
        raise AssertionError(f"step {step} not reached in time (at {self.attempt_step()}); {self.where()}")

    def wait_phase(self, phase: str, min_step: int = 0, timeout: float | None = None) -> int:
        """Wait until the trainer reports ``phase`` at or after min_step; returns the step."""
        deadline = time.monotonic() + (timeout or START_WITHIN_S + max(min_step, 1) * self.step_s * 4)
        while time.monotonic() < deadline:
            st = self.rd.read_status()
            if st.get("phase") == phase and st.get("trainer_pid"):
                now = self.attempt_step() if phase != "loading" else 0
                if now is not None and now >= min_step:
                    self._remember()
                    return now
            if st.get("state") in FINAL_STATES:
                raise AssertionError(f"the run ended ({st.get('state')}) before phase {phase} at step {min_step}")
            time.sleep(0.005)
        raise AssertionError(f"phase {phase} at step {min_step} not seen in time; {self.where()}")

    def where(self) -> str:
        """The run's raw status and the end of its runner's and trainer's logs, for a failure message."""
        st = self.rd.read_status()
        tails = []
        for log in (self.rd.runner_log_path, self.rd.stdout_path):
            try:
                tails.append(f"{log.name}: " + " | ".join(log.read_text(errors="replace").splitlines()[-3:]))
            except OSError:
                pass
        return f"state {st.get('state')}, phase {st.get('phase')}; " + "; ".join(tails)

    def _remember(self) -> None:
        st = self.rd.read_status()
        self.seen.update(p for p in (st.get("runner_pid"), st.get("trainer_pid")) if p)

    def live_pids(self) -> list[int]:
        """Live processes of this run: its recorded pids and its process group, if their command line or
        environment still names the run directory (as lifecycle judges)."""
        st = self.rd.read_status()
        pids = set(lifecycle.processes(self.rd, st)) if st else set()
        pids.update(p for p in self.seen if alive(p) and lifecycle._names_run(p, self.path))
        return sorted(pids)

    # -- faults ------------------------------------------------------------------------------------------------
    def inject(self, sig: str, target: str) -> None:
        st = self.rd.read_status()
        self.seen.update(p for p in (st.get("runner_pid"), st.get("trainer_pid")) if p)
        num = SIGNALS[sig]
        if target == "trainer":
            os.kill(int(st["trainer_pid"]), num)
        elif target == "runner":
            os.kill(int(st["runner_pid"]), num)
        else:
            os.killpg(int(st["pgid"]), num)

    # -- checks ----------------------------------------------------------------------------------------------
    def wait_final(self, within: float = FINAL_WITHIN_S) -> dict:
        deadline = time.monotonic() + within
        st = self.status()
        while st.get("state") not in FINAL_STATES and time.monotonic() < deadline:
            time.sleep(0.05)
            st = self.status()
        if st.get("state") not in FINAL_STATES:
            raise RunLost(f"still {st.get('state')} {within:.0f} s later, processes {self.live_pids()}: {st}")
        return st

    def wait_done(self, within: float | None = None) -> dict:
        """Wait for the end of an attempt that trains on to max_steps."""
        return self.wait_final(within or FINAL_WITHIN_S + self.max_steps * self.step_s * 4)

    def check_ended(self, expected: str | tuple[str, ...], st: dict | None = None) -> dict:
        """The final state is the expected one and tells the truth; no process of the run is left."""
        st = st or self.wait_final()
        state = st.get("state")
        if state not in ((expected,) if isinstance(expected, str) else expected):
            raise RunLost(f"ended {state}, expected {expected}: {st}")
        if state == "completed":
            hist = read_history(self.rd.metrics_path)
            if not (st.get("outcome") == "completed" and self.rd.has_event("train_end")
                    and hist.step == self.max_steps):
                raise RunLost(f"completed without train_end + outcome at max_steps (step {hist.step}): {st}")
        elif state in ("killed", "failed") and not st.get("error"):
            raise RunLost(f"{state} without an error saying why: {st}")
        self.assert_no_processes()
        return st

    def assert_no_processes(self, within: float = 5.0) -> None:
        deadline = time.monotonic() + within
        while (left := self.live_pids()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not left, f"processes of the run left behind: {left}"
        for proc in self.runners:
            proc.poll()

    def stop_checkpoint_is_at_the_stop(self) -> None:
        """A graceful stop checkpoints the step it stopped at (the train_end step)."""
        ends = [e for e in read_history(self.rd.metrics_path).events if e.get("event") == "train_end"]
        ckpt = supervisor.latest_checkpoint(self.rd)
        if not ends or ckpt is None or int(ckpt.name.split("-")[-1]) != ends[-1]["step"]:
            raise RunLost(f"stopped at step {ends[-1]['step'] if ends else '?'} without its checkpoint ({ckpt})")

    # -- resume ----------------------------------------------------------------------------------------------
    def start_resume(self) -> Path | None:
        """Resume from the last complete checkpoint; None (and a clear refusal checked) when there is none."""
        ckpt, skipped = lifecycle.resume_checkpoint(self.rd)
        if ckpt is None:
            try:
                supervisor.resume(self.rd)
            except BadInput as e:
                assert "no complete checkpoint" in str(e), e
                return None
            raise RunLost("resume started although no complete checkpoint exists")
        before = sum(e.get("event") == "resume" for e in read_history(self.rd.metrics_path).events)
        try:
            got = supervisor.resume(self.rd)
        except BadInput as e:
            raise RunLost(f"could not resume from the complete {ckpt.name}: {e}") from e
        self.runners.append(got.process)
        self.resumes += 1
        self.resume_events = before + 1
        st = self.rd.read_status()
        if st.get("resume_from") != str(ckpt):
            raise RunLost(f"resumed from {st.get('resume_from')}, not the newest complete {ckpt}")
        return ckpt

    def resume_to_max(self) -> bool:
        """Resume and let it finish: True when it reached max_steps with continuous metrics."""
        if self.start_resume() is None:
            return False
        self.check_ended("completed", self.wait_done())
        self.check_continuous()
        return True

    def check_continuous(self) -> None:
        """One line per metric: steps 1..max_steps once each (superseded rows dropped at each resume event), and
        every attempt's rows continue right after the checkpoint it resumed from."""
        xs = read_history(self.rd.metrics_path).points("loss")[0]
        if xs != [float(s) for s in range(1, self.max_steps + 1)]:
            raise RunLost(f"metrics not one continuous line of 1..{self.max_steps}: {xs}")
        expect = 1
        for line in self.rd.metrics_path.read_text().splitlines():
            row = json.loads(line)
            if row.get("event") == "resume":
                expect = row["step"] + 1
            elif "loss" in row:  # a metric row (the real trainer adds a summary row without it at the end)
                if row["step"] != expect:
                    raise RunLost(f"step {row['step']} where {expect} was due (a duplicated or missing step)")
                expect += 1
