"""Reward function references, checked without importing anything.

A recipe names reward functions in [rewards].funcs: a built-in name, or "path/to/file.py:function" for a user
function with trl's signature ``(completions, **kwargs) -> list[float]``. The file is parsed with ``ast`` here
(never imported: a recipe runs no code until training starts); the training child imports it.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

# name -> (dataset columns it needs, what it scores)
BUILTIN_REWARDS: dict[str, tuple[tuple[str, ...], str]] = {
    "format": ((), "1.0 when the whole completion is <reasoning>...</reasoning><answer>...</answer>, else 0.0"),
    "correctness": (("answer",), "2.0 when <answer> equals the dataset's answer (numerically if both are numbers)"),
    "length": ((), "small dense shaping reward: -|len - 40| / 40 characters"),
}
# Keyword arguments trl passes to every reward function besides dataset columns.
TRL_KWARGS = {"prompts", "completions", "completion_ids", "trainer_state", "log_extra", "log_metric"}


@dataclass(frozen=True)
class RewardRef:
    raw: str
    builtin: str | None = None
    file: Path | None = None
    function: str | None = None

    @property
    def name(self) -> str:
        return self.builtin or self.function or self.raw


def parse_reward_ref(raw: str, resolve_path) -> RewardRef:
    if raw in BUILTIN_REWARDS:
        return RewardRef(raw, builtin=raw)
    if ":" in raw and raw.rsplit(":", 1)[0].endswith(".py"):
        path, func = raw.rsplit(":", 1)
        return RewardRef(raw, file=resolve_path(path), function=func)
    return RewardRef(raw)


def check_reward_file(ref: RewardRef) -> tuple[list[str], str | None, str]:
    """(required dataset columns, problem or None, hint) for a user reward function, by reading its source."""
    assert ref.file is not None and ref.function
    if not ref.file.is_file():
        return [], f"reward file {ref.file} not found", "check the path before ':'"
    try:
        tree = ast.parse(ref.file.read_text(encoding="utf-8"), filename=str(ref.file))
    except SyntaxError as e:
        return [], f"reward file {ref.file} has a syntax error at line {e.lineno}: {e.msg}", "fix the file"
    except UnicodeDecodeError:
        return [], f"reward file {ref.file} is not UTF-8 text", "save it as UTF-8"
    funcs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    node = funcs.get(ref.function)
    if node is None:
        names = ", ".join(sorted(funcs)) or "none"
        return [], f"{ref.file} defines no function '{ref.function}' (functions: {names})", \
            "name a function defined at the top level of the file"
    a = node.args
    params = [p.arg for p in a.posonlyargs + a.args]
    if "completions" not in params + [p.arg for p in a.kwonlyargs]:
        return [], (f"reward function '{ref.function}' has no 'completions' parameter"), \
            "use trl's signature: def f(completions, **kwargs) -> list[float]"
    if a.kwarg is None:
        return [], f"reward function '{ref.function}' does not accept **kwargs", \
            "add **kwargs: trl passes prompts and every dataset column as keyword arguments"
    positional = a.posonlyargs + a.args
    n_required = len(positional) - len(a.defaults)
    required = [p.arg for p in positional[:n_required]]
    required += [p.arg for p, d in zip(a.kwonlyargs, a.kw_defaults) if d is None]
    return [c for c in required if c not in TRL_KWARGS], None, ""
