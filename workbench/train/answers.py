"""The one answer checker: what the ``format`` and ``correctness`` rewards score during training and what an eval
counts (``workbench eval``, the [eval] section), so training and evaluation agree.

  well formed   the whole completion is <reasoning>...</reasoning><answer>...</answer> (FORMAT_RE)
  the answer    the text of the first <answer>...</answer>
  correct       the answer equals the expected one: the same text, or the same value when both are plain
                numbers (a fast check), else math-verify (the checker open-r1 uses: LaTeX and plain expressions
                parsed to SymPy and compared, "0.5" = "1/2" = "\\frac{1}{2}"); with math-verify missing or
                unable to parse the expected answer, the fast check alone decides.

Child side only (math-verify imports SymPy, ~1 s, on first use).

>>> is_correct("4.0", "4"), is_correct(" 1,000 ", "1000"), is_correct("5", "4"), is_correct("yes", "yes")
(True, True, False, True)
>>> is_correct("1/2", "0.5"), extract_answer("<reasoning>r</reasoning><answer> 7 </answer>")
(True, '7')
"""
from __future__ import annotations

import functools
import logging
import re
import threading

FORMAT_RE = re.compile(r"^\s*<reasoning>.*?</reasoning>\s*<answer>.*?</answer>\s*$", re.DOTALL)
ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
TIMEOUT_S = 5  # math-verify's own limit per parse / comparison (signal based: main thread only)


def is_formatted(text: str) -> bool:
    return FORMAT_RE.match(text) is not None


def extract_answer(text: str) -> str | None:
    m = ANSWER_RE.search(text)
    return m.group(1).strip() if m else None


def _number(text: str) -> float | None:
    try:
        return float(text.strip().replace(",", ""))
    except ValueError:
        return None


def _timeout() -> int | None:
    # math-verify times out with signal.alarm, which only the main thread may use.
    return TIMEOUT_S if threading.current_thread() is threading.main_thread() else None


@functools.lru_cache(maxsize=1)
def _math_verify():
    try:
        import math_verify
    except ImportError:
        return None
    logging.getLogger("math_verify").setLevel(logging.ERROR)  # it warns on every unparsable answer
    return math_verify


@functools.lru_cache(maxsize=4096)
def _parse_gold(expected: str):
    mv = _math_verify()
    return mv.parse(expected, parsing_timeout=_timeout()) if mv else []


def is_correct(given: str | None, expected) -> bool:
    if given is None or expected is None:
        return False
    given, expected = str(given).strip(), str(expected).strip()
    if given == expected:
        return True
    a, b = _number(given), _number(expected)
    if a is not None and b is not None:  # two plain numbers: nothing for math-verify to add (and it is slower)
        return abs(a - b) < 1e-6
    gold = _parse_gold(expected)
    if not gold:
        return False
    mv = _math_verify()
    try:
        return bool(mv.verify(gold, mv.parse(given, parsing_timeout=_timeout()), timeout_seconds=_timeout()))
    except Exception:  # noqa: BLE001 - a checker failure is a wrong answer, never a crashed run
        return False


def score(text: str, expected) -> dict:
    """{"answer", "correct" (None without an expected answer), "formatted"} for one completion."""
    answer = extract_answer(text)
    return {"answer": answer, "correct": None if expected is None else is_correct(answer, expected),
            "formatted": is_formatted(text)}
