"""A stand-in for pynvml (the functions core/gpus.py calls), put in place with gpus.use_nvml(FakeNvml(...)), and a
fake live run whose process NVML can report as a GPU user."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

GIB = 1024 ** 3


class FakeNvml:
    """GPUs as dicts: name, util (%), used/total (bytes), temp (deg C), watts, procs {pid: bytes}."""

    def __init__(self, gpus: list[dict]):
        self.gpus = gpus

    def nvmlDeviceGetCount(self):
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i):
        return self.gpus[i]

    def nvmlDeviceGetName(self, h):
        return h["name"].encode()  # older pynvml returns bytes

    def nvmlDeviceGetMemoryInfo(self, h):
        return SimpleNamespace(used=h["used"], total=h["total"], free=h["total"] - h["used"])

    def nvmlDeviceGetUtilizationRates(self, h):
        return SimpleNamespace(gpu=h["util"], memory=0)

    def nvmlDeviceGetTemperature(self, h, sensor):
        return h["temp"]

    def nvmlDeviceGetPowerUsage(self, h):
        return int(h["watts"] * 1000)  # milliwatts

    def nvmlDeviceGetComputeRunningProcesses(self, h):
        return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in h.get("procs", {}).items()]


def two_gpus(busy_pid: int, used: int = 20 * GIB) -> FakeNvml:
    """GPU 0 busy (the pid holds ``used`` bytes), GPU 1 idle and free."""
    return FakeNvml([
        {"name": "NVIDIA H100 80GB HBM3", "util": 97, "used": used + GIB, "total": 80 * GIB, "temp": 64,
         "watts": 612.4, "procs": {busy_pid: used}},
        {"name": "NVIDIA H100 80GB HBM3", "util": 0, "used": GIB // 2, "total": 80 * GIB, "temp": 31, "watts": 70.0},
    ])


def sleeper(run_dir: Path) -> subprocess.Popen:
    """A process in its own session whose command line names the run dir: lifecycle counts it as the run's."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", str(run_dir)],
                            start_new_session=True)


def start_live_run(runs_dir: Path, run_id: str) -> tuple[Path, subprocess.Popen]:
    """A run dir in state running whose 'runner' is a real sleeping process naming the run dir (so
    lifecycle.processes finds it). The caller kills the process."""
    from workbench.core.rundir import hostname

    d = runs_dir / run_id
    d.mkdir(parents=True)
    proc = sleeper(d)
    now = time.time()
    (d / "status.json").write_text(json.dumps({
        "state": "running", "stage": "grpo", "name": run_id, "model": "builtin:tiny-lm", "created": now - 5,
        "started": now - 4, "host": hostname(), "runner_pid": proc.pid, "pgid": proc.pid}))
    (d / "metrics.jsonl").write_text(json.dumps({"event": "train_begin", "step": 0, "max_steps": 10,
                                                 "time": now - 3}) + "\n")
    return d, proc
