"""Pipelines: a folder of recipes run in file-name order, each stage starting from the previous one's model, as a
detached, supervised object. Shared by the CLI and the TUI; no UI, no torch.

In a pipeline recipe, ``run:previous`` (in [model] path, teacher or reward_model) names the final model of the
stage before it. Every recipe is validated before anything starts (``load_pipeline``; ``check_pipeline`` gives the
stages and problems without raising, for the TUI's folder picker, which ``pipeline_folders`` fills).

launch_pipeline: runs/pipelines/<id>/ (frozen recipes, pipeline.json, status queued; layout in core/pipedir.py), then
the pipeline runner (``python -m workbench.core.pipeline_runner PIPE_DIR``) in a new session, output to
pipeline.log, argv lists only. The runner starts each stage's run through the supervisor only after the previous
one completed; each run's status records ``pipeline`` (the id), ``pipeline_step`` and ``parent``.
stop / resume / find / list pipelines, and ``listing``: each pipeline with its stage runs, then the runs of no
pipeline, newest first (what `workbench ls` and the TUI's runs list show).
States and their transitions: the pipeline section of core/lifecycle.py. Recipe and validation code is imported
only to launch, so listing stays cheap.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.core import lifecycle, queue, supervisor
from workbench.core.atomic import write_json_atomic
from workbench.core.pipedir import PIPELINES, PipelineDir, pipelines_dir
from workbench.core.problems import BadInput, Problem, errors
from workbench.core.rundir import FINAL_STATES, LIVE_STATES, RunDir, hostname

if TYPE_CHECKING:
    from workbench.core.recipe import Recipe

MODEL_KEYS = ("model.path", "model.teacher", "model.reward_model")
MAX_FOLDERS = 100  # pipeline folders offered by pipeline_folders


@dataclass
class Pipeline:
    name: str
    recipes: list[Recipe]
    folder: Path | None = None


@dataclass(frozen=True)
class StageInfo:
    """One recipe of a pipeline folder, as the folder picker lists it."""
    file: Path
    stage: str
    model: str  # its [model] path (run:previous for a later stage)


@dataclass
class PipelineCheck:
    """A pipeline folder read and validated: its stages, every problem, and the Pipeline when nothing is an error."""
    folder: Path
    stages: list[StageInfo]
    problems: list[Problem]
    pipeline: Pipeline | None = None


def check_pipeline(target: str | Path, runs_dir: Path) -> PipelineCheck:
    """Read and validate every recipe of a pipeline folder (``*.toml`` in name order); never raises for bad input."""
    from workbench.core.recipe import Recipe
    from workbench.core.validate import validate_recipe

    target = Path(target).expanduser()
    if not target.is_dir():
        return PipelineCheck(target, [], [Problem(str(target), "", "a pipeline is a folder of recipes",
                                                  "give the folder (its *.toml files run in name order)")])
    files = sorted(target.glob("*.toml"))
    if not files:
        return PipelineCheck(target, [], [Problem(str(target), "", "holds no *.toml recipes",
                                                  "add recipes, e.g. 01-sft.toml")])
    recipes, stages, problems = [], [], []
    for i, f in enumerate(files):
        try:
            r = Recipe.load(f)
        except BadInput as e:
            problems += e.problems
            stages.append(StageInfo(f, "?", "?"))
            continue
        stages.append(StageInfo(f, r.stage or "?", str(r.get("model.path") or "?")))
        problems += validate_recipe(r, runs_dir, in_pipeline=True)
        if i == 0 and any(r.get(k) == "run:previous" for k in MODEL_KEYS):
            problems.append(Problem(str(f), "model.path", "the first stage has no previous stage",
                                    "name a model (e.g. builtin:tiny-lm)"))
        recipes.append(r)
    folder = target.resolve()
    return PipelineCheck(folder, stages, problems,
                         None if errors(problems) else Pipeline(folder.name, recipes, folder))


def load_pipeline(target: str | Path, runs_dir: Path) -> Pipeline:
    """The validated pipeline of a folder; BadInput with every problem if any is an error."""
    checked = check_pipeline(target, runs_dir)
    if checked.pipeline is None:
        raise BadInput(checked.problems)
    return checked.pipeline


def unapproved_code(pipe: Pipeline, runs_dir: Path) -> list:
    """The code the pipeline's stages would run that is not approved yet (trust.CodeItem, each once): what
    --allow-code, or the TUI's consent dialog, approves before launch_pipeline(allow_code=True)."""
    from workbench.core import trust

    seen, out = set(), []
    for recipe in pipe.recipes:
        for item in trust.unapproved(recipe, runs_dir):
            if (item.key, item.ident, item.digest) not in seen:
                seen.add((item.key, item.ident, item.digest))
                out.append(item)
    return out


def pipeline_folders(cwd: Path | None = None, shipped: Path | None = None) -> list[tuple[str, Path]]:
    """Folders that look like pipelines, as (section, folder): the shipped recipes' subfolders that hold *.toml
    (recipes/demo), then the current folder and its subfolders that hold recipe files (a [run] table or a stage in
    the first 4 KB). The shipped recipes folder itself (one template per stage) is not one."""
    from workbench.core.paths import RECIPES_DIR

    shipped = (shipped or RECIPES_DIR).resolve()
    cwd = (cwd or Path.cwd()).resolve()
    out: list[tuple[str, Path]] = []
    seen = {shipped}
    for section, folders in (("Shipped pipelines", _subfolders(shipped)), ("This folder", [cwd, *_subfolders(cwd)])):
        for folder in folders:
            if folder not in seen and _holds_recipes(folder, strict=section == "This folder"):
                seen.add(folder)
                out.append((section, folder))
    return out[:MAX_FOLDERS]


def _subfolders(folder: Path) -> list[Path]:
    try:
        return sorted(p.resolve() for p in folder.iterdir()
                      if p.is_dir() and not p.name.startswith((".", "_")) and p.name not in ("runs", "venv"))
    except OSError:
        return []


def _holds_recipes(folder: Path, strict: bool) -> bool:
    import re

    for f in sorted(folder.glob("*.toml"))[:50]:
        if not strict:
            return True
        try:
            with open(f, encoding="utf-8", errors="replace") as fh:
                head = fh.read(4096)
        except OSError:
            continue
        if re.search(r"^\s*\[\s*run\s*\]|^\s*stage\s*=", head, re.M):
            return True
    return False


def link(recipe: Recipe, previous_run_id: str | None) -> Recipe:
    """A copy of the recipe with run:previous replaced by the previous stage's run id."""
    from workbench.core.recipe import Recipe

    linked = Recipe.parse(recipe.dumps(), recipe.path)
    for key in MODEL_KEYS:
        if linked.get(key) == "run:previous" and previous_run_id:
            linked.set(key, f"run:{previous_run_id}")
    return linked


# -- launch ----------------------------------------------------------------------------------------------------
@dataclass
class LaunchedPipeline:
    pipeline: PipelineDir
    process: subprocess.Popen  # the pipeline runner; keep it to reap it (poll) if this process lives on


def launch_pipeline(pipe: Pipeline, runs_dir: Path, allow_code: bool = False) -> LaunchedPipeline:
    """Start a validated pipeline as a detached, supervised object. ``allow_code`` is the user's consent, given at
    launch, to the model code an earlier stage writes (run:previous with trust_remote_code)."""
    try:
        pd = PipelineDir.new(runs_dir, pipe.name)
    except OSError as e:
        raise BadInput(Problem(str(runs_dir), "", f"cannot create a pipeline directory: {e.strerror or e}",
                               "pass a writable --runs-dir (or set WORKBENCH_RUNS)"))
    try:
        pd.recipes_dir.mkdir()
        stages = []
        for recipe in pipe.recipes:
            file = Path(recipe.path).name
            supervisor.freeze(recipe).save(pd.recipes_dir / file)  # paths absolute; run:previous stays
            stages.append({"recipe": f"recipes/{file}", "source": str(recipe.path), "name": recipe.name,
                           "stage": recipe.stage, "run": None, "state": lifecycle.PENDING})
        write_json_atomic(pd.launch_path, {"folder": str(pipe.folder) if pipe.folder else None, "cwd": os.getcwd(),
                                           "host": hostname(), "python": sys.executable,
                                           "allow_code": bool(allow_code)})
        lifecycle.pipeline_transition(pd, lifecycle.QUEUED, lifecycle.LAUNCHER, name=pipe.name, stages=stages,
                                      stage=1, run=None, created=time.time(), **lifecycle.queued_fields())
    except BaseException as e:
        shutil.rmtree(pd.path, ignore_errors=True)  # nothing half-made is left behind
        if isinstance(e, OSError):
            raise BadInput(Problem(str(runs_dir), "", f"cannot write the pipeline directory: {e.strerror or e}",
                                   "free some space or pass another --runs-dir"))
        raise
    return _start_runner(pd)


def _start_runner(pd: PipelineDir) -> LaunchedPipeline:
    """The pipeline runner in a new session (SIGHUP of this terminal never reaches it), output to pipeline.log."""
    try:
        with open(pd.log_path, "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "workbench.core.pipeline_runner", str(pd.path)],
                                    start_new_session=True, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, close_fds=True)
    except OSError as e:
        lifecycle.try_pipeline_transition(pd, lifecycle.FAILED, lifecycle.LAUNCHER, ended=time.time(),
                                          error=f"cannot start the pipeline: {e.strerror or e}")
        raise BadInput(Problem(str(pd.path), "", f"cannot start the pipeline: {e.strerror or e}", "check the machine"))
    pd.write_status(runner_pid=proc.pid)
    return LaunchedPipeline(pd, proc)


def resume_pipeline(pd: PipelineDir) -> LaunchedPipeline:
    """Continue a failed/stopped/killed/lost pipeline from its current stage: the pipeline runner waits for that
    stage's run if it still lives, resumes it from its last complete checkpoint if it has one, else starts it
    afresh; then the later stages."""
    st = pipeline_status(pd)
    state = st.get("state")
    if state == lifecycle.COMPLETED:
        raise BadInput(Problem(str(pd.path), "", f"pipeline {pd.id} already completed",
                               "start it again: workbench pipeline FOLDER"))
    if state not in lifecycle.RESUMABLE:
        raise BadInput(Problem(str(pd.path), "", f"pipeline {pd.id} is {st.get('display_state')}",
                               f"stop it before resuming: workbench pipeline-stop {pd.id}"))
    pd.stop_request_path.unlink(missing_ok=True)
    lifecycle.pipeline_transition(pd, lifecycle.QUEUED, lifecycle.LAUNCHER, **lifecycle.fresh_pipeline_fields(),
                                  **lifecycle.queued_fields(), attempt=int(st.get("attempt", 1)) + 1)
    return _start_runner(pd)


# -- status and stop -------------------------------------------------------------------------------------------
def pipeline_status(pd: PipelineDir) -> dict:
    """The pipeline's status, settled (see lifecycle.pipeline_status), with ``display_state``."""
    return lifecycle.pipeline_status(pd)


def current_run(pd: PipelineDir, st: dict | None = None) -> RunDir | None:
    """The run of the pipeline's current stage, once started."""
    run = (pd.read_status() if st is None else st).get("run")
    rd = RunDir(pd.runs_dir / run) if run else None
    return rd if rd and rd.exists() else None


def request_pipeline_stop(pd: PipelineDir) -> None:
    """Ask the pipeline to stop: no later stage starts, and its current stage's run checkpoints and ends."""
    pd.stop_request_path.write_text(f"{time.time():.3f}\n")
    rd = current_run(pd)
    if rd and supervisor.status(rd).get("state") in LIVE_STATES:
        supervisor.request_stop(rd)


def stop_pipeline(pd: PipelineDir, grace: float = 60.0, term_grace: float = 10.0, on_phase=None) -> dict:
    """Stop the pipeline: its current stage's run is stopped (``supervisor.stop``, escalating), no later stage
    starts, and the pipeline ends ``stopped``. A finished pipeline whose stage run still lives (its runner was
    killed) has that run stopped. Returns the pipeline's final status."""
    say = on_phase or (lambda msg: None)
    if pipeline_status(pd).get("state") not in FINAL_STATES:
        request_pipeline_stop(pd)
        say("stop requested: the current stage's run saves a checkpoint and ends; later stages do not start")
    stopped: set[str] = set()
    while (rd := current_run(pd)) and rd.id not in stopped and supervisor.status(rd).get("state") in LIVE_STATES:
        stopped.add(rd.id)  # the runner may have started a next stage meanwhile: it is stopped too
        st = supervisor.stop(rd, grace=grace, term_grace=term_grace, on_phase=say)
        say(f"run {rd.id}: {st.get('state')}")
    deadline = time.monotonic() + 15.0  # the runner notices its run's end within a second
    while pipeline_status(pd).get("state") not in FINAL_STATES and time.monotonic() < deadline:
        time.sleep(0.2)
    return pipeline_status(pd)


# -- finding and listing ---------------------------------------------------------------------------------------
def list_pipelines(runs_dir: Path) -> list[tuple[PipelineDir, dict]]:
    """Every pipeline in the runs directory, newest first."""
    folder = pipelines_dir(runs_dir)
    if not folder.is_dir():
        return []
    out = []
    for p in sorted(folder.iterdir(), reverse=True):
        pd = PipelineDir(p)
        if p.is_dir() and pd.exists():
            out.append((pd, pipeline_status(pd)))
    return out


def find_pipeline(runs_dir: Path, ref: str) -> PipelineDir:
    """A pipeline by id, unique id prefix, unique part of the id, or path; 'last' is the newest."""
    direct = Path(ref)
    if direct.is_dir() and PipelineDir(direct).exists() and direct.resolve().parent.name == PIPELINES:
        return PipelineDir(direct.resolve())
    pipes = [pd for pd, _ in list_pipelines(runs_dir)]
    if ref in ("last", "latest") and pipes:
        return pipes[0]
    matches = ([pd for pd in pipes if pd.id == ref] or [pd for pd in pipes if pd.id.startswith(ref)]
               or [pd for pd in pipes if ref in pd.id])
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise BadInput(Problem(str(runs_dir), "", f"no pipeline '{ref}' in {runs_dir}",
                               "see `workbench ls` for pipeline ids (or pass --runs-dir)"))
    raise BadInput(Problem(str(runs_dir), "", f"'{ref}' matches {len(matches)} pipelines: "
                           + ", ".join(pd.id for pd in matches[:5]), "give more of the pipeline id"))


@dataclass
class Group:
    """A line of the runs list and what hangs under it: a pipeline with its stage runs (in stage order, earlier
    attempts of a stage included), or one run of no pipeline (``pipeline`` None)."""
    runs: list[tuple[RunDir, dict]]
    pipeline: PipelineDir | None = None
    status: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.pipeline.id if self.pipeline else self.runs[0][0].id


def listing(runs_dir: Path) -> list[Group]:
    """The runs waiting in the queue first, in queue order ("waiting #N", workbench.core.queue.arrange); then
    pipelines with their stage runs, and the runs of no pipeline, newest first (ids start with the time)."""
    groups = {pd.id: Group([], pd, st) for pd, st in list_pipelines(runs_dir)}
    solo = []
    for rd, st in supervisor.list_runs(runs_dir):
        group = groups.get(st.get("pipeline") or "")
        if group:
            group.runs.append((rd, st))
        else:
            solo.append(Group([(rd, st)]))
    for group in groups.values():
        group.runs.sort(key=lambda r: (r[1].get("pipeline_step") or 0, r[1].get("created") or 0))
    return queue.arrange(sorted([*groups.values(), *solo], key=lambda g: g.id, reverse=True), runs_dir)


def stage_label(st: dict) -> str:
    """'stage 2/3' for a pipeline's status."""
    return f"stage {st.get('stage') or 1}/{len(st.get('stages') or [])}"
