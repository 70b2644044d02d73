"""A validation problem and how it is shown: file, key, line, what is wrong, what to do."""
from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    file: str
    key: str  # dotted, e.g. "train.num_generations"; "" for the whole file
    message: str  # what is wrong
    hint: str = ""  # what to do
    line: int | None = None
    severity: str = "error"  # error | warning

    def format(self) -> str:
        where = self.file
        if self.line:
            where += f":{self.line}"
        if self.key:
            where += (": " if where else "") + (f"[{self.key}]" if "." not in self.key else self.key)
        if self.file == "--set":
            where = f"--set {self.key}"
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text += f"\n    -> {self.hint}"
        if self.severity == "warning":
            text = "warning: " + text
        return text


class BadInput(Exception):
    """Raised by light-side functions when user input is wrong; carries the problems to show (exit code 2)."""

    def __init__(self, problems: list[Problem] | Problem | str):
        if isinstance(problems, str):
            problems = [Problem(file="", key="", message=problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = problems
        super().__init__("\n".join(p.format() for p in problems))


def did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]
