"""``workbench eval``: what a TARGET names, where its results go, and the generating child process. Light: no
torch (the child, ``python -m workbench.train.evaluate SPEC``, generates).

TARGET is one of
  RUN                a run id (or unique prefix, ``last``, ``run:ID``, or the run's folder): its final model
  RUN/checkpoint-N   a checkpoint of a run (also its folder, RUN_DIR/checkpoints/checkpoint-N)
  builtin:NAME       a built-in tiny model
  FOLDER             a local model folder (save_pretrained; a LoRA adapter folder is loaded on its base)
  ORG/NAME           a hub model id (from the local cache, or the hub when it can be reached)

For a run (or its checkpoint) the prompts get the run recipe's [data] system_prompt and the model's own chat
template (saved with it by the trainer; a checkpoint without tokenizer files takes the run's), and the results
go to RUN_DIR/evals/; otherwise to --out (default ./evals). Each eval is ``<name>.json`` (summary),
``<name>.jsonl`` (every completion) and ``<name>.log`` (the child's output). A baseline is evaluated by the same
child on the same prompts, right after the target, and saved beside it.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from workbench.core import datafile, evals, models, rules_eval
from workbench.core.atomic import read_json, write_json_atomic
from workbench.core.problems import BadInput, Problem
from workbench.core.rundir import RunDir

CHECKPOINT_RE = re.compile(r"(?P<run>.+?)/(?:checkpoints/)?(?P<ckpt>checkpoint-\d+)/?")


@dataclass(frozen=True)
class Target:
    label: str  # shown in results: RUN/final, RUN/checkpoint-N, builtin:NAME, a folder, a hub id
    short: str  # for file names: final, checkpoint-N, tiny-lm, the folder's name, org--name
    model: str  # what the child loads: a folder, builtin:NAME or a hub id
    tokenizer: str | None = None  # where the tokenizer comes from when the model folder has none
    run: RunDir | None = None
    system_prompt: str = ""


def resolve_target(raw: str, runs_dir: Path, key: str = "TARGET") -> Target:
    """The model a TARGET names (see the module docstring); BadInput with what to do when it names none."""
    from workbench.core import supervisor

    if raw.startswith("builtin:"):
        name = raw.split(":", 1)[1]
        if name not in models.BUILTIN_MODELS:
            raise BadInput(Problem(key, raw, f"unknown built-in model '{name}'",
                                   "built-ins: " + ", ".join(f"builtin:{n}" for n in models.BUILTIN_MODELS)))
        return Target(raw, name, raw)
    raw = raw.removeprefix("run:")
    path = Path(raw).expanduser()
    if path.is_dir():
        return _folder_target(path.resolve(), key)
    m = CHECKPOINT_RE.fullmatch(raw)
    if m:
        rd = supervisor.find_run(runs_dir, m["run"])
        return _run_target(rd, rd.checkpoints / m["ckpt"], key)
    if "/" not in raw:
        try:
            rd = supervisor.find_run(runs_dir, raw)
        except BadInput as e:
            if "matches" in e.problems[0].message:  # ambiguous: say so; "no run": maybe a hub id
                raise
        else:
            return _run_target(rd, None, key)
    if models.hub_cached(raw) is None and not models.hub_reachable():
        raise BadInput(Problem(key, raw, f"'{raw}' is not a run in {runs_dir}, not a model folder, not a built-in, and "
                               "not in the Hugging Face cache (and the hub cannot be reached)",
                               "name a run id (workbench ls), RUN/checkpoint-N, builtin:tiny-lm, or a model folder"))
    return Target(raw, evals.safe_name(raw), raw)


def _folder_target(path: Path, key: str) -> Target:
    if RunDir(path).exists():  # a run's folder
        return _run_target(RunDir(path), None, key)
    if path.parent.name == "checkpoints" and RunDir(path.parent.parent).exists():
        return _run_target(RunDir(path.parent.parent), path, key)
    if path.name == "final" and RunDir(path.parent).exists():
        return _run_target(RunDir(path.parent), None, key)
    problems = models.folder_problems(path)
    if problems:
        raise BadInput([Problem(key, str(path), what, todo) for what, todo in problems])
    return Target(str(path), evals.safe_name(path.name), str(path))


def _run_target(rd: RunDir, checkpoint: Path | None, key: str) -> Target:
    from workbench.core.recipe import Recipe

    stage = str(rd.read_status().get("stage") or "")
    if stage in rules_eval.SCORER_STAGES or stage == "best-of-k":
        why = "trains a reward model, which scores and does not generate" if stage != "best-of-k" else \
            "trains no model (its output is runs/<id>/dataset.jsonl)"
        raise BadInput(Problem(key, rd.id, f"run {rd.id} is a {stage} run: it {why}",
                               "evaluate a run of a generating stage (sft, grpo, dpo, ...), or its base model"))
    folder = checkpoint or rd.final_model
    if not folder.is_dir():
        st = rd.read_status().get("state", "?")
        done = sorted(p.name for p in rd.checkpoints.glob("checkpoint-*") if p.is_dir())
        what = f"checkpoint {folder.name}" if checkpoint else "final model"
        raise BadInput(Problem(key, rd.id, f"run {rd.id} has no {what} yet (state: {st})",
                               f"checkpoints: {', '.join(done)} (name one as {rd.id}/checkpoint-N)" if done else
                               "wait for the run to complete, or evaluate another model"))
    try:
        recipe = Recipe.load(rd.recipe_path)
        system, base = recipe.get("data.system_prompt", "") or _data_system_prompt(recipe), recipe.get("model.path")
    except BadInput:
        system, base = "", None
    tokenizer = str(rd.final_model) if rd.final_model.is_dir() else _model_source(base, rd)
    short = folder.name if checkpoint else "final"
    return Target(f"{rd.id}/{short}", short, str(folder), tokenizer, rd, str(system))


def _data_system_prompt(recipe) -> str:
    """The system message the run's training conversations start with (its first row), "" when none."""
    raw = recipe.get("data.path")
    if not isinstance(raw, str) or not raw:
        return ""
    try:
        rows = datafile.peek(Path(recipe.resolve_path(raw)), max_rows=1).rows
    except (BadInput, OSError, ValueError, AttributeError):
        return ""
    return evals.leading_system_prompt(rows[0]) if rows else ""


def _model_source(raw, rd: RunDir) -> str | None:
    """What the child loads for a recipe's model reference (a run's base model, for a checkpoint's tokenizer)."""
    if not isinstance(raw, str) or not raw:
        return None
    ref = models.parse_model_ref(raw, lambda p: Path(p).expanduser().resolve())
    if ref.kind == "builtin":
        return raw
    if ref.kind == "run":
        return str(models.run_final(rd.path.parent, ref.value))
    return ref.value


def check_data(raw: str) -> Path:
    """The --data file: exists, parses, has prompts (warnings for no answers are the caller's to print)."""
    path = Path(raw).expanduser().resolve()
    peek = datafile.peek(path, key="--data")
    if not rules_eval.has_prompts(peek.columns):
        raise BadInput(Problem(str(path), "--data", f"has no prompts to generate from (columns {peek.columns})",
                               "rows need a 'prompt' column (text or chat messages) and an 'answer' column"))
    return path


def has_answers(path: Path) -> bool:
    return any(c in datafile.peek(path, key="--data").columns for c in rules_eval.ANSWER_COLUMNS)


def out_dir(target: Target, out: str | None) -> Path:
    return target.run.path / "evals" if target.run is not None else Path(out or "evals").expanduser().resolve()


@dataclass
class Job:
    target: Target
    name: str
    role: str = "target"

    def out(self, folder: Path) -> Path:
        return folder / self.name

    def spec(self, folder: Path) -> dict:
        return {"label": self.target.label, "model": self.target.model, "tokenizer": self.target.tokenizer,
                "out": str(self.out(folder)), "role": self.role}


def run_child(folder: Path, jobs: list[Job], settings: dict, on_line=None) -> int:
    """Evaluate the jobs in one child process (own session, output to ``<first job>.log``); Ctrl-C ends the child
    (SIGTERM, then SIGKILL after 10 s). Returns its exit code."""
    folder.mkdir(parents=True, exist_ok=True)
    log_path = jobs[0].out(folder).with_suffix(".log")
    fd, spec_path = tempfile.mkstemp(prefix=".eval-", suffix=".spec.json", dir=folder)
    os.close(fd)
    try:
        write_json_atomic(spec_path, {**settings, "jobs": [j.spec(folder) for j in jobs]})
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "workbench.train.evaluate", spec_path],
                                    start_new_session=True, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, close_fds=True)
        try:
            _follow(proc, log_path, on_line)
        except KeyboardInterrupt:
            _end(proc)
            raise
        return proc.returncode
    finally:
        Path(spec_path).unlink(missing_ok=True)


def _follow(proc: subprocess.Popen, log_path: Path, on_line) -> None:
    offset, partial = 0, b""
    while True:
        done = proc.poll() is not None
        with open(log_path, "rb") as f:
            f.seek(offset)
            data = f.read()
        offset += len(data)
        lines = (partial + data).split(b"\n")
        partial = lines.pop()
        for line in lines:
            text = line.decode("utf-8", "replace")
            if on_line and text.startswith("[eval]"):
                on_line(text)
        if done:
            return
        time.sleep(0.2)


def _end(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def last_lines(log_path: Path, n: int = 15) -> list[str]:
    try:
        return log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-n:]
    except OSError:
        return []


def read_result(path: Path) -> dict | None:
    result = read_json(path.with_suffix(".json"))
    return result if isinstance(result, dict) and isinstance(result.get("summary"), dict) else None
