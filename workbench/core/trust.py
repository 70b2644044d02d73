"""Consent before a recipe runs Python code it brings along: reward-function files, and the code a model ships
with (``[model] trust_remote_code = true``). No UI, no torch: the CLI, the TUI and the training child use it.

Asking: the CLI's --allow-code, the TUI's dialog showing the code. Approvals are remembered in
$WORKBENCH_CACHE/approved-code.json, so an edit asks again:
  reward file       absolute path               -> SHA-256 of its bytes
  model folder      "model:" + absolute folder   -> digest of its *.py files (names and bytes); run:ID is its final/
  hub model         "model:hub:" + repo id       -> "reference" (its code downloads when it loads: approved by name)
  run:previous      never remembered: the earlier pipeline stage has not written it yet, so --allow-code each time

Sealing (``seal``, from supervisor.prepare right after freeze): the reward files are read once, checked against the
approvals, and those bytes are copied into RUN_DIR/code/; the frozen recipe's rewards.funcs point at the copies;
RUN_DIR/consent.json records each copy's SHA-256 and each model reference's approved digest. The training child
imports only a copy whose bytes match (``verified_code``) and passes trust_remote_code=True only for model
references recorded and unchanged (``remote_code_allowed``); resume re-checks both (``verify_run``). So what runs
is what was approved, however long after and from whatever edited source.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from workbench.core.atomic import read_json, write_json_atomic
from workbench.core.models import parse_model_ref, run_final
from workbench.core.paths import cache_dir, runs_dir as default_runs_dir
from workbench.core.problems import BadInput, Problem
from workbench.core.recipe import Recipe
from workbench.core.rewards import parse_reward_ref

CONSENT_FILE = "consent.json"
CODE_DIR = "code"
MODEL_KEYS = ("model.path", "model.teacher", "model.reward_model")
HUB_DIGEST = "reference"
RESTART_HINT = "what runs is what was approved at launch: start a new run (workbench run --allow-code) for new code"


class ConsentError(Exception):
    """Code about to run is not the code that was approved. The message ends with what to do."""

    def __init__(self, what: str):
        self.what = what
        super().__init__(f"{what}; {RESTART_HINT}")


@dataclass(frozen=True)
class CodeItem:
    """One piece of code a recipe would run, as the user approves it."""
    key: str  # the recipe key that brings it in
    ident: str  # what the approvals remember it by
    digest: str | None  # None: not knowable yet (run:previous), so never remembered
    label: str  # one line for the user
    path: Path | None = None  # the file or folder to review

    @property
    def ask(self) -> str:
        if self.key == "rewards.funcs":
            return "this recipe runs Python code from this file, not yet approved on this machine"
        if self.digest is None:
            return (f"{self.key} = {self.label} with trust_remote_code = true runs model code that is not there yet "
                    "(an earlier stage writes it), so it is asked every time")
        return (f"{self.key} with trust_remote_code = true runs the Python code shipped with this model, not yet "
                "approved on this machine")


def approvals_path() -> Path:
    return cache_dir() / "approved-code.json"


def _approvals() -> dict:
    known = read_json(approvals_path(), {})
    return known if isinstance(known, dict) else {}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest(path: Path) -> str:
    return _sha256(Path(path).read_bytes())


def folder_code(folder: Path) -> list[Path]:
    """The Python files of a model folder (what trust_remote_code may import), in a stable order."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*.py") if p.is_file() and "__pycache__" not in p.relative_to(folder).parts)


def folder_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in folder_code(folder):
        h.update(f"{p.relative_to(folder).as_posix()}\0{digest(p)}\n".encode())
    return h.hexdigest()


# -- what a recipe runs ----------------------------------------------------------------------------------------
def _user_files(recipe: Recipe) -> list[Path]:
    funcs = recipe.get("rewards.funcs", [])
    out: list[Path] = []
    for raw in funcs if isinstance(funcs, list) else []:
        ref = parse_reward_ref(raw, recipe.resolve_path) if isinstance(raw, str) else None
        if ref and ref.file and ref.file not in out:
            out.append(ref.file)
    return out


def code_files(recipe: Recipe) -> list[Path]:
    """The reward files the recipe names that exist (a missing one is a validation problem)."""
    return [p for p in _user_files(recipe) if p.is_file()]


def model_items(recipe: Recipe, runs_dir: Path | None = None) -> list[CodeItem]:
    """The model references whose own code runs: every non-built-in model, when trust_remote_code is true."""
    if recipe.get("model.trust_remote_code") is not True:
        return []
    out = []
    for key in MODEL_KEYS:
        raw = recipe.get(key)
        if not isinstance(raw, str) or not raw:
            continue
        ref = parse_model_ref(raw, recipe.resolve_path)
        if ref.kind == "builtin":  # built by workbench itself: no shipped code
            continue
        if ref.kind == "hub":
            out.append(CodeItem(key, f"model:hub:{ref.value}", HUB_DIGEST, f"hub model {ref.value}"))
            continue
        if ref.kind == "run" and ref.value == "previous":
            out.append(CodeItem(key, "model:run:previous", None, raw))
            continue
        folder = run_final(runs_dir or default_runs_dir(), ref.value) if ref.kind == "run" else Path(ref.value)
        folder = folder.resolve()
        out.append(CodeItem(key, f"model:{folder}", folder_digest(folder) if folder.is_dir() else None,
                            f"{raw} ({folder})" if raw != str(folder) else str(folder), folder))
    return out


def items(recipe: Recipe, runs_dir: Path | None = None) -> list[CodeItem]:
    files = [CodeItem("rewards.funcs", str(p.resolve()), digest(p), str(p), p) for p in code_files(recipe)]
    seen, out = set(), []
    for item in files + model_items(recipe, runs_dir):
        if (item.ident, item.digest) not in seen:
            seen.add((item.ident, item.digest))
            out.append(item)
    return out


def unapproved(recipe: Recipe, runs_dir: Path | None = None) -> list[CodeItem]:
    known = _approvals()
    return [i for i in items(recipe, runs_dir) if i.digest is None or known.get(i.ident) != i.digest]


def approve(pending: list[CodeItem]) -> None:
    known = _approvals()
    for item in pending:
        if item.digest is not None:
            known[item.ident] = item.digest
    approvals_path().parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(approvals_path(), known)


def review_text(pending: list[CodeItem], max_lines: int = 40) -> str:
    parts = []
    for item in pending:
        if item.key == "rewards.funcs" and item.path is not None:
            lines = item.path.read_text(encoding="utf-8", errors="replace").splitlines()
            shown = "\n".join(lines[:max_lines]) + (f"\n... ({len(lines) - max_lines} more lines)"
                                                    if len(lines) > max_lines else "")
            parts.append(f"{item.path}  (sha256 {item.digest[:12]})\n{shown}")
        elif item.digest is None:
            parts.append(f"{item.key} = {item.label}: trust_remote_code runs the code saved with that model, which "
                         "does not exist yet (asked every time)")
        elif item.path is None:
            parts.append(f"{item.key} = {item.label}: trust_remote_code runs the Python code of this hub repository, "
                         "downloaded when the model loads (approved by name: review it on the hub)")
        else:
            files = folder_code(item.path)
            listing = "\n".join(f"  {p.relative_to(item.path)}  ({len(p.read_bytes().splitlines())} lines)"
                                for p in files) or "  (no .py files: code may still come from the hub via auto_map)"
            parts.append(f"{item.key} = {item.label}: trust_remote_code runs the Python code in this folder "
                         f"(digest {item.digest[:12]})\n{listing}")
    return "\n\n".join(parts)


# -- a run directory's record ----------------------------------------------------------------------------------
def read_consent(run_dir: Path) -> dict | None:
    record = read_json(Path(run_dir) / CONSENT_FILE, None)
    return record if isinstance(record, dict) else None


def _copy_name(code: Path, source: Path) -> str:
    name, n = source.name, 1
    while (code / name).exists():
        n += 1
        name = f"{source.stem}-{n}.py"
    return name


def seal(frozen: Recipe, run_dir: Path, runs_dir: Path | None = None) -> None:
    """Copy the approved reward files into run_dir/code/ (rewards.funcs then name the copies) and write
    run_dir/consent.json. Raises BadInput, listing all of them, for code not approved as it is now."""
    known, problems = _approvals(), []
    files: dict[str, dict] = {}
    funcs = frozen.get("rewards.funcs")
    if isinstance(funcs, list) and _user_files(frozen):
        code = Path(run_dir) / CODE_DIR
        code.mkdir(mode=0o700, exist_ok=True)
        copies: dict[Path, Path] = {}
        out = []
        for raw in funcs:
            ref = parse_reward_ref(raw, frozen.resolve_path) if isinstance(raw, str) else None
            if not (ref and ref.file):
                out.append(raw)
                continue
            source = ref.file.resolve()
            if source not in copies:
                try:
                    data = source.read_bytes()  # read once: these bytes are checked, copied and later imported
                except OSError as e:
                    problems.append(Problem(str(source), "rewards.funcs", f"cannot read it: {e.strerror or e}"))
                    continue
                sha = _sha256(data)
                if known.get(str(source)) != sha:
                    problems.append(Problem(str(source), "rewards.funcs", "this file is not approved as it is now "
                                            "(new, or changed since it was approved)",
                                            "review it, then run again with --allow-code"))
                    continue
                copy = code / _copy_name(code, source)
                copy.write_bytes(data)
                copy.chmod(0o400)  # the record is of these bytes; editing the copy is refused later
                files[f"{CODE_DIR}/{copy.name}"] = {"sha256": sha, "source": str(source)}
                copies[source] = copy
            out.append(f"{copies[source]}:{ref.function}")
        frozen.set("rewards.funcs", out)
    models = {}
    for item in model_items(frozen, runs_dir):
        if item.digest is None or known.get(item.ident) != item.digest:
            problems.append(Problem(str(item.path or item.label), item.key, item.ask,
                                    "review its code, then run again with --allow-code"))
        models[item.key] = {"ref": frozen.get(item.key), "ident": item.ident, "digest": item.digest}
    if problems:
        raise BadInput(problems)
    write_json_atomic(Path(run_dir) / CONSENT_FILE, {"version": 1, "files": files, "models": models})


def verified_code(path: Path) -> bytes:
    """The bytes of a reward file the training child is about to import: only a copy in a run directory's code/
    folder whose SHA-256 that run's consent.json records. ConsentError otherwise."""
    path = Path(path)
    run_dir = path.parent.parent
    record = read_consent(run_dir) if path.parent.name == CODE_DIR else None
    entry = (record or {}).get("files", {}).get(f"{CODE_DIR}/{path.name}")
    if not isinstance(entry, dict):
        raise ConsentError(f"{path} is not a reward file approved for this run (only the copies made in the run "
                           f"directory's {CODE_DIR}/ at launch run)")
    data = path.read_bytes()
    if _sha256(data) != entry.get("sha256"):
        raise ConsentError(f"{path} changed after it was approved (sha256 {_sha256(data)[:12]}, approved "
                           f"{str(entry.get('sha256'))[:12]})")
    return data


def remote_code_allowed(recipe: Recipe, run_dir: Path) -> bool:
    """trust_remote_code for the training child's from_pretrained calls: False when the recipe does not ask for it;
    True when every model reference is recorded in the run's consent.json and its code is unchanged; ConsentError
    otherwise. Called right before each load."""
    if recipe.get("model.trust_remote_code") is not True:
        return False
    found = model_items(recipe, Path(run_dir).parent)
    recorded = (read_consent(run_dir) or {}).get("models", {})
    for item in found:
        entry = recorded.get(item.key) if isinstance(recorded, dict) else None
        if not isinstance(entry, dict) or entry.get("ident") != item.ident:
            raise ConsentError(f"{item.key} = {item.label}: trust_remote_code was not approved for this model in "
                               "this run")
        if item.digest is None or entry.get("digest") != item.digest:
            raise ConsentError(f"{item.key} = {item.label}: the model's Python code changed after it was approved")
    return True


def verify_run(run_dir: Path) -> None:
    """Before a run starts again (resume): BadInput, listing each one, if its approved code changed."""
    run_dir = Path(run_dir)
    recipe = Recipe.load(run_dir / "recipe.toml")
    problems = []
    for path in _user_files(recipe):
        try:
            verified_code(path)
        except (ConsentError, OSError) as e:
            problems.append(Problem(str(path), "rewards.funcs", e.what if isinstance(e, ConsentError) else
                                    f"cannot read the approved copy: {e.strerror or e}", RESTART_HINT))
    try:
        remote_code_allowed(recipe, run_dir)
    except ConsentError as e:
        problems.append(Problem(str(run_dir), "model.trust_remote_code", e.what, RESTART_HINT))
    if problems:
        raise BadInput(problems)
