"""Reward functions for GRPO-style stages, with trl's signature ``(completions, **kwargs) -> list[float]``.

Built-ins follow the reasoning template ``<reasoning>...</reasoning><answer>...</answer>``. User functions come
from the file a recipe names, and only from the approved copy in the run directory's code/ folder: its bytes are
checked against consent.json right before they run (workbench.core.trust), and exactly the checked bytes run.

>>> format([[{"role": "assistant", "content": "<reasoning>2 plus 2</reasoning><answer>4</answer>"}]])
[1.0]
>>> correctness(["<reasoning>r</reasoning><answer> 4.0 </answer>", "<answer>5</answer>"], answer=["4", "4"])
[2.0, 0.0]

``format`` and ``correctness`` use the checker of workbench/train/answers.py (math-verify for math answers), the
same one evaluations count with, so a training reward and an eval's accuracy agree.
"""
from __future__ import annotations

import importlib.util
import re
import sys
import types
from pathlib import Path

from workbench.core import trust
from workbench.core.rewards import RewardRef
from workbench.train.answers import ANSWER_RE, FORMAT_RE, is_correct



def text_of(completion) -> str:
    """Conversational completions are [{"role": "assistant", "content": ...}]; standard ones are strings."""
    if isinstance(completion, list):
        return completion[-1]["content"] if completion else ""
    return str(completion)


def format(completions, **kwargs) -> list[float]:  # noqa: A001 - the name users write in recipes
    return [1.0 if FORMAT_RE.match(text_of(c)) else 0.0 for c in completions]


def correctness(completions, answer, **kwargs) -> list[float]:
    out = []
    for c, a in zip(completions, answer):
        m = ANSWER_RE.search(text_of(c))
        out.append(2.0 if m and is_correct(m.group(1), a) else 0.0)
    return out


def length(completions, **kwargs) -> list[float]:
    return [-abs(len(text_of(c)) - 40) / 40.0 for c in completions]


BUILTINS = {"format": format, "correctness": correctness, "length": length}


def load(ref: RewardRef):
    """The reward function a reference names; a user file must be its run's approved copy (else ConsentError)."""
    if ref.builtin:
        return BUILTINS[ref.builtin]
    assert ref.file is not None and ref.function
    source = trust.verified_code(ref.file)  # read once: what was checked is what runs
    module_name = f"workbench_user_rewards_{abs(hash(str(ref.file)))}"
    module = types.ModuleType(module_name)
    module.__file__ = str(ref.file)
    module.__spec__ = importlib.util.spec_from_file_location(module_name, ref.file)
    sys.modules[module_name] = module
    exec(compile(source, str(ref.file), "exec"), module.__dict__)  # noqa: S102 - approved user code
    return getattr(module, ref.function)


def load_all(raw_refs: list[str]) -> list:
    from workbench.core.rewards import parse_reward_ref

    return [load(parse_reward_ref(r, lambda p: Path(p).expanduser().resolve())) for r in raw_refs]
