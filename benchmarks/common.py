"""Shared pieces of the benchmarks: results with budgets, the machine description, timing helpers.

A benchmark module exposes ``run(ctx: Context) -> list[Result]``. ``python -m benchmarks`` runs them all (or the
ones named on the command line), prints one table and writes it to benchmarks/results/latest.md and .json.
"""
from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
HEAVY = ("torch", "transformers", "trl", "peft", "datasets", "deepspeed", "accelerate")


@dataclass
class Result:
    bench: str              # the benchmark group, e.g. "startup"
    name: str               # what was measured, e.g. "TUI first frame (cold)"
    value: float | None     # the measured number (None: could not be measured; see note)
    unit: str               # "s", "MB", "%", "x"
    budget: float | None = None  # the value must be <= budget (None: reported, no budget)
    note: str = ""

    @property
    def ok(self) -> bool | None:
        if self.budget is None:
            return None
        return self.value is not None and self.value <= self.budget

    def verdict(self) -> str:
        return {None: "", True: "ok", False: "OVER"}[self.ok]


@dataclass
class Context:
    work: Path                          # scratch space for generated runs, kept between invocations
    quick: bool = False                 # fewer repetitions (for a smoke check)
    pairs: int = 0                      # training: interleaved pairs (0: 3, or 1 with --quick)
    env: dict = field(default_factory=dict)  # environment for child processes

    def child_env(self, **extra) -> dict:
        env = dict(self.env)
        env.update({k: str(v) for k, v in extra.items()})
        return env


def machine() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:
        pass
    try:
        info["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                        text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def timed(argv: list[str], env: dict | None = None, cwd: Path | None = None, timeout: float = 600) -> tuple[float, str]:
    """Wall seconds of one child process, and its combined output; raises on a non-zero exit."""
    t0 = time.perf_counter()
    p = subprocess.run(argv, env=env, cwd=cwd or ROOT, capture_output=True, text=True, timeout=timeout)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {p.returncode}:\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
    return dt, p.stdout + p.stderr


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def _status_mb(pid: int, field: str) -> float | None:
    """A memory field of /proc/PID/status (e.g. VmRSS, VmHWM) in MB; None when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process now, in MB."""
    return _status_mb(pid, "VmRSS")


def peak_rss_mb(pid: int) -> float | None:
    """Peak resident memory of a process so far, in MB."""
    return _status_mb(pid, "VmHWM")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used so far (from /proc/PID/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def as_dict(r: Result) -> dict:
    d = asdict(r)
    d["ok"] = r.ok
    return d
