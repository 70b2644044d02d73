"""The fault tally (see conftest.py): what each injected fault came to. Its own module, not the conftest, so the root
conftest can carry it across pytest-xdist workers (each worker's outcomes are sent to the controller, which prints
the one line). FAULT_SEED is chosen once by the controller (tests/conftest.py) and read here by every worker.
"""
from __future__ import annotations

import os
import random
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

from tests.faults.harness import RunLost

SEED = int(os.environ.get("FAULT_SEED") or random.SystemRandom().randrange(1_000_000))


@dataclass
class Outcome:
    fault: str
    lost: bool = False
    resumed_to_max: bool = False
    failed: bool = False  # the test failed for another reason (an orphan, a slow settle)


@dataclass
class Tally:
    outcomes: list[Outcome] = field(default_factory=list)
    first: float | None = None
    last: float | None = None

    def record(self, fault: str, lost: bool, resumed_to_max: bool = False) -> Outcome:
        out = Outcome(fault, lost, resumed_to_max)
        self.outcomes.append(out)
        return out

    @contextmanager
    def fault(self, name: str):
        """Count one injected fault; the body sets ``resumed_to_max``. RunLost inside it counts a lost run."""
        out = self.record(name, lost=False)
        try:
            yield out
        except RunLost:
            out.lost = True
            raise
        except BaseException:
            out.failed = True
            raise

    def to_json(self) -> dict:
        return {"outcomes": [asdict(o) for o in self.outcomes], "first": self.first, "last": self.last}

    def merge(self, other: dict) -> None:
        """A worker's tally (``to_json``) into this one; the clock is the machine's monotonic one, shared."""
        self.outcomes += [Outcome(**o) for o in other["outcomes"]]
        firsts = [t for t in (self.first, other["first"]) if t is not None]
        lasts = [t for t in (self.last, other["last"]) if t is not None]
        self.first, self.last = min(firsts, default=None), max(lasts, default=None)

    def line(self) -> str:
        n = len(self.outcomes)
        lost = sum(o.lost for o in self.outcomes)
        resumed = sum(o.resumed_to_max for o in self.outcomes)
        failed = sum(o.failed for o in self.outcomes)
        wall = (self.last or time.monotonic()) - (self.first or time.monotonic())
        return (f"fault tally: {n} faults injected, {lost} runs lost, {resumed} resumes reached max_steps, "
                f"{wall:.0f} s" + (f", {failed} other failures" if failed else "") + f" (FAULT_SEED={SEED})")


TALLY = Tally()
