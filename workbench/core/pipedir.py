"""A pipeline's directory: the link between the CLI/TUI and a pipeline runner, as a run dir is for a run.

  runs/pipelines/<pipeline-id>/
    status.json     state, runner pid, times, error, the current stage (1-based) and its run, and ``stages``:
                    one entry per recipe {recipe, source, name, stage, run, state, earlier_runs}; written atomically
    pipeline.json   what was launched: the source folder, cwd, host, whether --allow-code was given
    recipes/        frozen copies of the stage recipes (paths absolute; run:previous kept for the runner to link)
    pipeline.log    the pipeline runner's output
    heartbeat       touched every few seconds by the pipeline runner
    stop.request    created to ask the pipeline to stop (its current stage's run is asked too)

The stages' runs live in runs/<run-id>/ as any run, with ``pipeline`` (this id) and ``pipeline_step`` in their
status. States and who may write them: the pipeline section of workbench/core/lifecycle.py. Light: no torch.
"""
from __future__ import annotations

from pathlib import Path

from workbench.core.rundir import StatusDir

PIPELINES = "pipelines"  # the folder inside the runs directory


class PipelineDir(StatusDir):
    """One pipeline's directory (the layout above)."""

    launch_path = property(lambda self: self.path / "pipeline.json")
    recipes_dir = property(lambda self: self.path / "recipes")
    log_path = property(lambda self: self.path / "pipeline.log")
    runs_dir = property(lambda self: self.path.parent.parent)

    @classmethod
    def new(cls, runs_dir: Path, name: str) -> "PipelineDir":
        return cls.create(Path(runs_dir) / PIPELINES, name)


def pipelines_dir(runs_dir: Path) -> Path:
    return Path(runs_dir) / PIPELINES
