"""Reward functions for GRPO-style stages, with trl's signature ``(completions, **kwargs) -> list[float]``.

Built-ins follow the reasoning template ``<reasoning>...</reasoning><answer>...</answer>``. User functions are
imported from the file a recipe names (the only way a recipe runs user code).

>>> format([[{"role": "assistant", "content": "<reasoning>2 plus 2</reasoning><answer>4</answer>"}]])
[1.0]
>>> correctness(["<reasoning>r</reasoning><answer> 4.0 </answer>", "<answer>5</answer>"], answer=["4", "4"])
[2.0, 0.0]
"""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

from workbench.core.rewards import RewardRef

FORMAT_RE = re.compile(r"^\s*<reasoning>.*?</reasoning>\s*<answer>.*?</answer>\s*$", re.DOTALL)
ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def text_of(completion) -> str:
    """Conversational completions are [{"role": "assistant", "content": ...}]; standard ones are strings."""
    if isinstance(completion, list):
        return completion[-1]["content"] if completion else ""
    return str(completion)


def format(completions, **kwargs) -> list[float]:  # noqa: A001 - the name users write in recipes
    return [1.0 if FORMAT_RE.match(text_of(c)) else 0.0 for c in completions]


def _same(given: str, expected: str) -> bool:
    given, expected = given.strip(), expected.strip()
    try:
        return abs(float(given.replace(",", "")) - float(expected.replace(",", ""))) < 1e-6
    except ValueError:
        return given == expected


def correctness(completions, answer, **kwargs) -> list[float]:
    out = []
    for c, a in zip(completions, answer):
        m = ANSWER_RE.search(text_of(c))
        out.append(2.0 if m and _same(m.group(1), str(a)) else 0.0)
    return out


def length(completions, **kwargs) -> list[float]:
    return [-abs(len(text_of(c)) - 40) / 40.0 for c in completions]


BUILTINS = {"format": format, "correctness": correctness, "length": length}


def load(ref: RewardRef):
    if ref.builtin:
        return BUILTINS[ref.builtin]
    assert ref.file is not None and ref.function
    module_name = f"workbench_user_rewards_{abs(hash(str(ref.file)))}"
    spec = importlib.util.spec_from_file_location(module_name, ref.file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return getattr(module, ref.function)


def load_all(raw_refs: list[str]) -> list:
    from workbench.core.rewards import parse_reward_ref

    return [load(parse_reward_ref(r, lambda p: Path(p).expanduser().resolve())) for r in raw_refs]
