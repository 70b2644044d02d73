"""Pipelines as detached, supervised objects (workbench.core.pipeline, .pipeline_runner, lifecycle's pipeline section):
stages start only after the previous one completed, a failing stage ends the pipeline, the following CLI's
Ctrl-C and hang-up leave it alone, a SIGKILLed pipeline runner is settled, stop and resume, grouped listing.

Real processes: the CLI, the pipeline runner, the runs' runners and the fake trainer (its ``steps`` mode), chosen per
stage through the pipeline runner's test seam (WORKBENCH_TEST_FAKE_TRAINER); no torch."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ASSETS, workbench_cmd
from tests.core.fakes import FAKE, alive, recipe_for, wait_until
from workbench import cli
from workbench.core import lifecycle, pipeline, supervisor
from workbench.core.launch import LaunchPlan
from workbench.core.pipedir import PipelineDir
from workbench.core.pipeline_runner import TEST_TRAINER_ENV
from workbench.core.recipe import Recipe
from workbench.core.rundir import FINAL_STATES, RunDir


def make_folder(folder: Path, *stages: tuple[str, int]) -> Path:
    """A pipeline folder: one GRPO recipe per (name, max_steps); each stage after the first uses run:previous."""
    folder.mkdir()
    for i, (name, max_steps) in enumerate(stages, 1):
        model = "builtin:tiny-lm" if i == 1 else "run:previous"
        (folder / f"{i:02d}-{name}.toml").write_text(
            f'[run]\nname = "{name}"\nstage = "grpo"\n\n[model]\npath = "{model}"\n\n'
            f'[data]\npath = "{ASSETS / "arith-prompts.jsonl"}"\n\n[rewards]\nfuncs = ["format"]\n\n'
            f'[train]\nnum_generations = 4\nmax_steps = {max_steps}\n')
    return folder


@pytest.fixture
def fake_stages(monkeypatch):
    """Which fake trainer mode each stage (by recipe name) runs, for every pipeline runner started from now on."""
    def use(modes: dict[str, str], step_s: float = 0.02) -> None:
        monkeypatch.setenv(TEST_TRAINER_ENV, json.dumps({"trainer": str(FAKE), "modes": modes}))
        monkeypatch.setenv("FAKE_STEP_S", str(step_s))
        monkeypatch.setenv("FAKE_SAVE_S", "0.05")
        monkeypatch.setenv("FAKE_LOAD_S", "0.05")
    return use


@pytest.fixture
def leave_nothing(runs_dir):
    """After the test, no pipeline runner, run runner or trainer of this runs directory is left alive."""
    yield
    for pd, st in pipeline.list_pipelines(runs_dir):
        if lifecycle.pipeline_alive(pd, st):
            os.kill(int(st["runner_pid"]), signal.SIGKILL)
    for rd, st in supervisor.list_runs(runs_dir):
        for pid in lifecycle.processes(rd, st):
            os.kill(pid, signal.SIGKILL)


def start(folder: Path, runs_dir: Path) -> pipeline.LaunchedPipeline:
    return pipeline.launch_pipeline(pipeline.load_pipeline(folder, runs_dir), runs_dir)


def wait_final(pd: PipelineDir, timeout: float = 60.0) -> dict:
    wait_until(lambda: pipeline.pipeline_status(pd)["state"] in FINAL_STATES, timeout, f"pipeline {pd.id} to end")
    return pipeline.pipeline_status(pd)


def stage_runs(pd: PipelineDir) -> list[RunDir]:
    return [RunDir(pd.runs_dir / s["run"]) for s in pd.read_status()["stages"] if s.get("run")]


def wait_stage_training(pd: PipelineDir, step: int, timeout: float = 60.0) -> RunDir:
    def training():
        st = pd.read_status()
        run = st["stages"][step - 1].get("run")
        return RunDir(pd.runs_dir / run) if run and RunDir(pd.runs_dir / run).has_event("train_begin") else None
    return wait_until(training, timeout, f"stage {step} to train")


def assert_in_order(runs: list[RunDir]) -> None:
    """Each stage was created only after the stage before it had ended completed, and started from its model."""
    for before, after in zip(runs, runs[1:]):
        a, b = before.read_status(), after.read_status()
        assert a["state"] == "completed"
        assert b["created"] >= a["ended"], f"{after.id} was made before {before.id} ended"
        assert b["parent"] == before.id
        assert Recipe.load(after.recipe_path).get("model.path") == f"run:{before.id}"


# -- the table -------------------------------------------------------------------------------------------------
def test_pipeline_transitions_are_refused_outside_the_table(runs_dir):
    pd = PipelineDir.new(runs_dir, "t")
    lifecycle.pipeline_transition(pd, lifecycle.QUEUED, lifecycle.LAUNCHER, stages=[])
    with pytest.raises(lifecycle.TransitionRefused):
        lifecycle.pipeline_transition(pd, lifecycle.RUNNING, lifecycle.RUNNER)  # a run's runner is not its runner
    lifecycle.pipeline_transition(pd, lifecycle.RUNNING, lifecycle.PIPELINE_RUNNER)
    lifecycle.pipeline_transition(pd, lifecycle.KILLED, lifecycle.READER)
    assert lifecycle.try_pipeline_transition(pd, lifecycle.COMPLETED, lifecycle.PIPELINE_RUNNER) is None
    assert pd.read_status()["state"] == "killed", "a late runner does not overwrite a settled pipeline"
    with pytest.raises(lifecycle.TransitionRefused):
        lifecycle.pipeline_transition(pd, lifecycle.QUEUED, lifecycle.READER)
    lifecycle.pipeline_transition(pd, lifecycle.QUEUED, lifecycle.LAUNCHER)  # pipeline-resume


# -- order and outcome -----------------------------------------------------------------------------------------
def test_stages_start_in_order_only_after_the_previous_completed(runs_dir, tmp_path, fake_stages, leave_nothing):
    fake_stages({"s1": "steps", "s2": "steps", "s3": "steps"})
    got = start(make_folder(tmp_path / "p", ("s1", 6), ("s2", 6), ("s3", 6)), runs_dir)
    pd = got.pipeline
    assert pd.path.parent == runs_dir / "pipelines"
    assert sorted(p.name for p in pd.recipes_dir.iterdir()) == ["01-s1.toml", "02-s2.toml", "03-s3.toml"]
    st = wait_final(pd)
    assert got.process.wait(timeout=10) == 0
    assert st["state"] == "completed" and st["stage"] == 3 and "error" not in st
    assert [s["state"] for s in st["stages"]] == ["completed"] * 3
    runs = stage_runs(pd)
    assert_in_order(runs)
    assert [r.read_status()["pipeline"] for r in runs] == [pd.id] * 3
    assert [r.read_status()["pipeline_step"] for r in runs] == [1, 2, 3]
    assert (pd.heartbeat_path.is_file() and pd.log_path.is_file()
            and "pipeline " + pd.id + " completed" in pd.log_path.read_text())


def test_a_failing_stage_ends_the_pipeline_failed_and_later_stages_never_start(runs_dir, tmp_path, fake_stages,
                                                                               leave_nothing, capsys):
    fake_stages({"s1": "steps", "s2": "crash", "s3": "steps"})
    folder = make_folder(tmp_path / "p", ("s1", 3), ("s2", 3), ("s3", 3))
    assert cli.main(["--runs-dir", str(runs_dir), "pipeline", str(folder)]) == 1
    ((pd, st),) = pipeline.list_pipelines(runs_dir)
    assert st["state"] == "failed"
    assert "stage 2 (s2) failed" in st["error"] and "fake failure" in st["error"]
    assert [s["state"] for s in st["stages"]] == ["completed", "failed", "pending"]
    assert len(supervisor.list_runs(runs_dir)) == 2, "stage 3 was never started"
    err = capsys.readouterr().err
    assert "fake failure" in err and f"workbench pipeline-resume {pd.id}" in err


# -- the following CLI is not the pipeline ---------------------------------------------------------------------
def test_ctrl_c_and_hang_up_of_the_following_cli_leave_the_pipeline_running(runs_dir, tmp_path, fake_stages,
                                                                            leave_nothing):
    """One CLI gets Ctrl-C (SIGINT to its process group), the other a hang-up (SIGHUP to its session) while stage 1
    trains: both stop following, and both pipelines still run stage 2 only after stage 1 completed."""
    fake_stages({"s1": "steps", "s2": "steps"}, step_s=0.05)
    clis = {}
    for sig in ("SIGINT", "SIGHUP"):
        folder = make_folder(tmp_path / sig, ("s1", 60), ("s2", 5))
        clis[sig] = subprocess.Popen(workbench_cmd("--runs-dir", str(runs_dir), "pipeline", str(folder)),
                                     start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
    try:
        pipes = wait_until(lambda: (lambda p: p if len(p) == 2 else None)(pipeline.list_pipelines(runs_dir)), 60,
                           "both pipelines")
        by_folder = {json.loads(pd.launch_path.read_text())["folder"]: pd for pd, _ in pipes}
        for sig, proc in clis.items():
            pd = by_folder[str(tmp_path / sig)]
            first = wait_stage_training(pd, 1)
            os.killpg(proc.pid, getattr(signal, sig))
            out = proc.communicate(timeout=30)[0]
            if sig == "SIGINT":
                assert proc.returncode == 0 and "stopped following; the pipeline goes on" in out, out
            assert supervisor.status(first)["state"] == "running", "stage 1 still trains"
            assert lifecycle.pipeline_alive(pd, pd.read_status())
        for pd in by_folder.values():
            st = wait_final(pd)
            assert st["state"] == "completed", st
            runs = stage_runs(pd)
            assert len(runs) == 2
            assert_in_order(runs)
    finally:
        for proc in clis.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


# -- the pipeline runner killed --------------------------------------------------------------------------------
def test_sigkilled_pipeline_runner_is_settled_killed_its_run_goes_on_and_resume_waits_for_it(
        runs_dir, tmp_path, fake_stages, leave_nothing):
    fake_stages({"s1": "steps", "s2": "steps"}, step_s=0.05)
    got = start(make_folder(tmp_path / "p", ("s1", 50), ("s2", 3)), runs_dir)
    pd = got.pipeline
    first = wait_stage_training(pd, 1)
    os.kill(got.process.pid, signal.SIGKILL)
    got.process.wait(timeout=5)
    st = pipeline.pipeline_status(pd)
    assert st["state"] == "killed" and "SIGKILL" in st["error"] and first.id in st["error"]
    assert pd.read_status()["state"] == "killed", "settled on disk, not only computed"
    assert supervisor.status(first)["state"] == "running", "the stage's run is not touched"
    (group,) = [g for g in pipeline.listing(runs_dir) if g.pipeline]
    assert [rd.id for rd, _ in group.runs] == [first.id], "the live run is still listed with its pipeline"
    assert not [g for g in pipeline.listing(runs_dir) if not g.pipeline]

    resumed = pipeline.resume_pipeline(pd)
    st = wait_final(pd)
    resumed.process.wait(timeout=10)
    assert st["state"] == "completed" and st["attempt"] == 2
    runs = stage_runs(pd)
    assert runs[0].id == first.id and first.read_status().get("attempt", 1) == 1, "waited for, not restarted"
    assert_in_order(runs)


# -- stop and resume -------------------------------------------------------------------------------------------
def test_stop_ends_the_pipeline_stopped_and_resume_continues_from_the_checkpoint(runs_dir, tmp_path, fake_stages,
                                                                                leave_nothing, capsys):
    fake_stages({"s1": "steps", "s2": "steps", "s3": "steps"}, step_s=0.02)
    folder = make_folder(tmp_path / "p", ("s1", 3), ("s2", 150), ("s3", 3))  # stage 2: 3 s unless stopped
    base = ["--runs-dir", str(runs_dir)]
    assert cli.main([*base, "pipeline", str(folder), "--detach"]) == 0
    ((pd, _),) = pipeline.list_pipelines(runs_dir)
    second = wait_stage_training(pd, 2)
    assert cli.main([*base, "pipeline-stop", pd.id[:-2], "--timeout", "20"]) == 0
    st = pipeline.pipeline_status(pd)
    assert st["state"] == "stopped" and st["stage"] == 2
    assert [s["state"] for s in st["stages"]] == ["completed", "stopped", "pending"]
    rs = supervisor.status(second)
    assert rs["state"] == "stopped" and supervisor.latest_checkpoint(second) is not None
    assert len(supervisor.list_runs(runs_dir)) == 2, "stage 3 was not started"
    assert f"pipeline {pd.id}: stopped" in capsys.readouterr().out

    assert cli.main([*base, "pipeline-resume", pd.id]) == 0, capsys.readouterr()
    st = pipeline.pipeline_status(pd)
    assert st["state"] == "completed"
    runs = stage_runs(pd)
    assert runs[1].id == second.id, "stage 2 resumed in its own run directory"
    rs = second.read_status()
    assert rs["attempt"] == 2 and rs["resume_from"].startswith(str(second.checkpoints))
    assert rs["state"] == "completed" and second.has_event("train_end")
    assert_in_order(runs)


def test_resume_without_a_checkpoint_starts_the_stage_afresh(runs_dir, tmp_path, fake_stages, leave_nothing):
    fake_stages({"s1": "crash", "s2": "steps"})
    got = start(make_folder(tmp_path / "p", ("s1", 3), ("s2", 3)), runs_dir)
    pd = got.pipeline
    assert wait_final(pd)["state"] == "failed"
    (crashed,) = stage_runs(pd)
    fake_stages({"s1": "steps", "s2": "steps"})  # the cause fixed
    pipeline.resume_pipeline(pd).process.wait(timeout=60)
    st = wait_final(pd)
    assert st["state"] == "completed"
    runs = stage_runs(pd)
    assert runs[0].id != crashed.id and st["stages"][0]["earlier_runs"] == [crashed.id]
    assert_in_order(runs)
    (group,) = pipeline.listing(runs_dir)
    assert [rd.id for rd, _ in group.runs] == [crashed.id, runs[0].id, runs[1].id], "the failed try stays listed"


def test_a_live_or_finished_pipeline_is_not_resumed(runs_dir, tmp_path, fake_stages, leave_nothing):
    from workbench.core.problems import BadInput

    fake_stages({"s1": "steps"})
    got = start(make_folder(tmp_path / "p", ("s1", 3)), runs_dir)
    with pytest.raises(BadInput, match="stop it before resuming"):
        pipeline.resume_pipeline(got.pipeline)
    assert wait_final(got.pipeline)["state"] == "completed"
    with pytest.raises(BadInput, match="already completed"):
        pipeline.resume_pipeline(got.pipeline)
    got.process.wait(timeout=10)


# -- listing ---------------------------------------------------------------------------------------------------
def test_ls_shows_a_pipeline_with_its_stage_runs_under_it(runs_dir, tmp_path, fake_stages, leave_nothing, capsys,
                                                         monkeypatch):
    fake_stages({"s1": "steps", "s2": "steps"})
    monkeypatch.setattr(supervisor, "launch_plan", lambda recipe, run_dir: LaunchPlan(
        [sys.executable, str(FAKE), "succeed", str(run_dir)], {"WORKBENCH_RUN_DIR": str(run_dir)}))
    solo_before = supervisor.launch(recipe_for("succeed"), runs_dir)
    time.sleep(1.1)  # ids start with the second they were made in
    got = start(make_folder(tmp_path / "p", ("s1", 3), ("s2", 3)), runs_dir)
    wait_final(got.pipeline)
    time.sleep(1.1)
    solo_after = supervisor.launch(recipe_for("succeed"), runs_dir)
    for proc in (solo_before.process, got.process, solo_after.process):
        proc.wait(timeout=30)
    capsys.readouterr()
    monkeypatch.setenv("COLUMNS", "120")  # every column, whatever terminal the tests run in
    assert cli.main(["--runs-dir", str(runs_dir), "ls"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    first, second = stage_runs(got.pipeline)
    assert [ln.split()[0] for ln in lines] == [solo_after.run.id, got.pipeline.id, "└", "└", solo_before.run.id]
    assert lines[1].split()[1:5] == ["completed", "pipeline", "p", "stage"] and "stage 2/2" in lines[1]
    assert lines[2].split()[1] == first.id and lines[3].split()[1] == second.id
    assert not alive(got.pipeline.read_status()["runner_pid"])
