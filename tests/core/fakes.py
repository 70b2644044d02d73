"""Helpers for tests that launch the fake trainer (tests/fixtures/fake_trainer.py) through the real supervisor."""
from __future__ import annotations

import os
import time
from pathlib import Path

from tests.conftest import ASSETS, FIXTURES
from workbench.core.recipe import Recipe
from workbench.core.rundir import RunDir

FAKE = FIXTURES / "fake_trainer.py"


def alive(pid: int | None) -> bool:
    """A live process (not a zombie) with this pid, whatever its command line."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def wait_until(cond, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def recipe_for(mode: str) -> Recipe:
    return Recipe.parse(f'[run]\nname = "fake-{mode}"\nstage = "grpo"\n\n[model]\npath = "builtin:tiny-lm"\n\n'
                        f'[data]\npath = "{ASSETS / "arith-prompts.jsonl"}"\n\n[rewards]\nfuncs = ["format"]\n\n'
                        '[train]\nnum_generations = 4\nmax_steps = 3\n')


def wait_training(rd: RunDir) -> dict:
    wait_until(lambda: rd.has_event("train_begin") and rd.read_status().get("trainer_pid"), what="train_begin")
    st = rd.read_status()
    assert st["state"] == "running"
    return st
