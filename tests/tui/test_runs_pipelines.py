"""The runs screen groups a pipeline's stage runs under the pipeline's row; s and r on that row stop and resume the
pipeline, enter opens its current stage's run."""
from __future__ import annotations

import json
import time
from pathlib import Path

from tests.tui.conftest import make_run
from tests.tui.screen_text import screen_text, wait_for
from tests.tui.test_runs_screen import wait_rows
from workbench.core import pipeline
from workbench.core.pipedir import PipelineDir
from workbench.core.rundir import hostname
from workbench.tui.screens.monitor import MonitorScreen

SIZE = (100, 24)


def make_pipeline(runs_dir: Path, pipe_id: str, state: str, runs: list[str], host: str = "elsewhere-host") -> Path:
    """A pipeline directory as its runner leaves it, and its stage runs (each completed but the last, which is in
    the pipeline's state unless that is stopped)."""
    stages = [{"recipe": f"recipes/{i:02d}.toml", "name": f"stage{i}", "stage": "grpo", "run": run,
               "state": "completed"} for i, run in enumerate(runs, 1)]
    d = runs_dir / "pipelines" / pipe_id
    d.mkdir(parents=True)
    now = time.time()
    (d / "status.json").write_text(json.dumps({"state": state, "name": "demo", "stages": stages, "stage": len(runs),
                                               "run": runs[-1], "created": now - 60, "started": now - 59,
                                               "host": host}))
    for i, run in enumerate(runs, 1):
        last = i == len(runs) and state != "stopped"
        rd = make_run(runs_dir, run, state=state if last else "completed")
        status = json.loads((rd / "status.json").read_text())
        status.update(pipeline=pipe_id, pipeline_step=i)
        (rd / "status.json").write_text(json.dumps(status))
    return d


def rows_text(app) -> list[str]:
    table = app.screen.query_one("DataTable")
    return [str(table.get_row_at(i)[0]) for i in range(table.row_count)]


async def test_pipeline_row_then_its_stage_runs_and_s_stops_the_pipeline(runs_dir, app_factory):
    make_run(runs_dir, "20260101-000000-solo-old")
    pipe = make_pipeline(runs_dir, "20260102-000000-demo", "running",
                         ["20260102-000001-demo-pretrain", "20260102-000100-demo-sft"])
    make_run(runs_dir, "20260103-000000-solo-new")
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await wait_rows(pilot, 5)
        assert rows_text(app) == ["20260103-000000-solo-new", "20260102-000000-demo",
                                  "└ 20260102-000001-demo-pretrain", "└ 20260102-000100-demo-sft",
                                  "20260101-000000-solo-old"]
        text = screen_text(app)
        assert "pipeline" in text and "stage 2/2" in text
        await pilot.press("down")  # the pipeline's row
        await pilot.press("s")
        await pilot.pause(0.1)
        question = app.screen.question  # it asks first, naming the current stage's run
        assert question.startswith("Stop pipeline 20260102-000000-demo?") and "20260102-000100-demo-sft: Step 5" in question
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert not (pipe / "stop.request").exists(), "not stopped: the question was declined"
        await pilot.press("s")
        await pilot.pause(0.1)
        await pilot.press("y")
        await pilot.pause(0.1)
        assert (pipe / "stop.request").exists(), "the pipeline is asked to stop"
        assert (runs_dir / "20260102-000100-demo-sft" / "stop.request").exists(), "and its current stage's run"
        assert not (runs_dir / "20260102-000001-demo-pretrain" / "stop.request").exists()
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert isinstance(app.screen, MonitorScreen) and app.screen.rd.id == "20260102-000100-demo-sft"


async def test_r_on_a_stopped_pipeline_resumes_it(runs_dir, app_factory):
    """Stopped after its only stage completed: resumed, its runner finds nothing left to run and completes it."""
    pipe = make_pipeline(runs_dir, "20260102-000000-demo", "stopped", ["20260102-000001-demo-pretrain"],
                         host=hostname())
    (pipe / "stop.request").write_text("1\n")
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await wait_rows(pilot, 2)
        await pilot.press("r")
        pd = PipelineDir(pipe)
        await wait_for(pilot, lambda: pipeline.pipeline_status(pd)["state"] == "completed", "the pipeline", timeout=30)
        st = pipeline.pipeline_status(pd)
        assert st["state"] == "completed" and st["attempt"] == 2, st
        assert not (pipe / "stop.request").exists()
        for proc in app.launched:
            proc.wait(timeout=10)
