"""The machine's load for the system panel: CPU, RAM, free disk of the runs directory and the GPUs (core/gpus.py),
sampled at most once a second into a bounded history; which GPU memory belongs to which live run; and the text
the panel shows (the runs list's one line, the tables of `workbench top` and of the monitor's System tab).

Light: no torch, no UI. psutil is imported by the first sample (in a worker thread, never at TUI start). Nothing
samples on its own: a view that is on screen asks ``SystemSampler.sample`` (its timer, its worker), so a hidden
panel costs nothing.

A run's GPU memory: NVML lists each GPU's processes (pid -> bytes); a pid counts for a run when it is one of the
run's live processes (``lifecycle.processes``: its runner and the members of its process group that name its run
directory). In a container without the host's PID namespace NVML's pids are the host's and match no run.
"""
from __future__ import annotations

import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from workbench.core.gpus import GpuSnapshot, snapshot

GIB = 1024 ** 3
HISTORY = 600  # samples kept for the charts: ten minutes at one a second
MIN_INTERVAL_S = 1.0  # a sample asked for sooner than this after the last one is the last one
CPU_BASELINE_S = 0.1  # the first sample measures CPU over this long (a percentage needs two readings)
SEP = " · "


@dataclass
class SystemSample:
    time: float
    cpu_percent: float  # of the whole machine (all cores)
    cpu_count: int
    ram_used: int  # bytes (total - available)
    ram_total: int
    disk_free: int | None  # bytes free on the runs directory's file system
    disk_path: str
    gpu: GpuSnapshot


@dataclass(frozen=True)
class RunGpuMemory:
    """GPU memory one process of a live run holds on one GPU."""
    run: str
    pid: int
    gpu: int
    memory: int  # bytes; 0 when NVML does not say (no permission, some drivers)


class SystemSampler:
    """Samples on demand, at most once per ``min_interval`` (callers in several threads get the same sample),
    and keeps the last ``keep`` samples for charts."""

    def __init__(self, runs_dir: str | os.PathLike, keep: int = HISTORY, min_interval: float = MIN_INTERVAL_S):
        self.runs_dir = Path(runs_dir)
        self.min_interval = min_interval
        self.history: deque[SystemSample] = deque(maxlen=keep)
        self.lock = threading.Lock()
        self._cpu: tuple[float, float] | None = None  # (busy, total) seconds of the last reading

    def sample(self) -> SystemSample:
        with self.lock:
            last = self.history[-1] if self.history else None
            if last is not None and time.time() - last.time < self.min_interval:
                return last
            import psutil  # 20 ms: here, in the sampling thread, not at import

            cpu = self._cpu_percent(psutil)
            mem = psutil.virtual_memory()
            path = _existing(self.runs_dir)
            try:
                free = psutil.disk_usage(str(path)).free
            except OSError:
                free = None
            s = SystemSample(time.time(), cpu, psutil.cpu_count() or 1, int(mem.total - mem.available),
                             int(mem.total), free, str(path), snapshot())
            self.history.append(s)
            return s

    def samples(self) -> list[SystemSample]:
        with self.lock:
            return list(self.history)

    def _cpu_percent(self, psutil) -> float:
        """Busy share of all cores since the last reading (per sampler, so no other psutil user disturbs it)."""
        def reading() -> tuple[float, float]:
            t = psutil.cpu_times()
            idle = t.idle + getattr(t, "iowait", 0.0)
            total = sum(t)
            return total - idle, total

        if self._cpu is None:
            self._cpu = reading()
            time.sleep(CPU_BASELINE_S)
        busy, total = reading()
        b0, t0 = self._cpu
        self._cpu = (busy, total)
        return max(0.0, min(100.0, 100.0 * (busy - b0) / (total - t0))) if total > t0 else 0.0


def _existing(path: Path) -> Path:
    """The path, or its nearest existing parent (a runs directory not made yet is on its parent's disk)."""
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


# -- which GPU memory is whose ---------------------------------------------------------------------------------
def run_gpu_memory(gpus: GpuSnapshot, runs) -> list[RunGpuMemory]:
    """The GPU memory held by processes of these runs: ``runs`` is (RunDir, status) pairs of live runs. Runs
    are only looked at when some GPU has a process at all (reading a run's processes scans /proc)."""
    from workbench.core import lifecycle

    held: dict[int, list[tuple[int, int]]] = {}
    for g in gpus.gpus:
        for pid, used in g.processes.items():
            held.setdefault(pid, []).append((g.index, used))
    out: list[RunGpuMemory] = []
    if not held:
        return out
    for rd, st in runs:
        if st.get("state") not in lifecycle.LIVE_STATES:
            continue
        for pid in lifecycle.processes(rd, st):
            out += [RunGpuMemory(rd.id, pid, index, used) for index, used in held.get(pid, ())]
    return sorted(out, key=lambda r: (r.run, r.gpu, r.pid))


def live_run_gpu_memory(gpus: GpuSnapshot, runs_dir: str | os.PathLike) -> list[RunGpuMemory]:
    """``run_gpu_memory`` of every live run in the runs directory (listed only when some GPU has a process)."""
    if not any(g.processes for g in gpus.gpus):
        return []
    from workbench.core import supervisor

    return run_gpu_memory(gpus, supervisor.list_runs(Path(runs_dir)))


# -- text ------------------------------------------------------------------------------------------------------
def fmt_gib(n: int | float | None) -> str:
    if n is None:
        return "?"
    v = n / GIB
    return f"{v:.0f}" if v >= 10 else f"{v:.1f}"


def no_gpu_text(gpus: GpuSnapshot) -> str:
    """'no GPU (why)' in words a user reads: the reason core/gpus gives, without its own 'no GPU:' prefix."""
    reason = gpus.reason or ""
    for prefix in ("no GPU: NVML unavailable (", "no GPU: "):
        if reason.startswith(prefix):
            reason = reason[len(prefix):]
            if prefix.endswith("(") and reason.endswith(")"):
                reason = reason[:-1]
            break
    return f"no GPU ({reason})" if reason and reason != "no GPU" else "no GPU"


def gpu_summary(gpus: GpuSnapshot) -> str:
    if not gpus.available:
        return no_gpu_text(gpus)
    return f"GPU {len(gpus.free_indices())}/{len(gpus.gpus)} free"


def host_parts(s: SystemSample, cores: bool = False) -> list[str]:
    parts = [f"CPU {s.cpu_percent:.0f}%" + (f" of {s.cpu_count} cores" if cores else ""),
             f"RAM {fmt_gib(s.ram_used)}/{fmt_gib(s.ram_total)} GiB"]
    if s.disk_free is not None:
        parts.append(f"disk {fmt_gib(s.disk_free)} GiB free")
    return parts


def status_line(s: SystemSample, width: int = 78, cores: bool = False) -> str:
    """The runs list's line, e.g. 'GPU 2/8 free · CPU 37% · RAM 41/126 GiB · disk 120 GiB free', at most
    ``width`` characters: a long no-GPU reason is shortened first, then the parts on the right are dropped."""
    gpu = gpu_summary(s.gpu)
    rest = host_parts(s, cores)
    line = SEP.join([gpu, *rest])
    if len(line) > width and not s.gpu.available and "(" in gpu:
        room = width - (len(line) - len(gpu))  # what the GPU part may take
        gpu = _elide_reason(gpu, room)
        line = SEP.join([gpu, *rest])
    while len(line) > width and rest:
        rest.pop()
        line = SEP.join([gpu, *rest])
    return line if len(line) <= width else line[:max(0, width - 1)] + "…"


def _elide_reason(text: str, room: int) -> str:
    """'no GPU (a long reason)' in at most ``room`` characters: the reason cut with '…', or just 'no GPU'."""
    head, reason = text.split(" (", 1)
    reason = reason[:-1]
    keep = room - len(head) - 3  # " (" + ")"
    if keep < 8:
        return head
    return f"{head} ({reason[:keep - 1]}…)" if len(reason) > keep else text


def gpu_table(gpus: GpuSnapshot, width: int = 80, mine: dict[int, int] | None = None) -> list[str]:
    """One line per GPU: index, name, utilisation, memory, temperature, power, free; with ``mine`` (GPU index ->
    bytes) a column of what this run holds there. Without GPUs: the one 'no GPU (why)' line."""
    if not gpus.available:
        return [no_gpu_text(gpus)]
    cols = [("util", 5), ("memory", 12), ("temp", 5), ("power", 6)] + ([("run", 9)] if mine is not None else [])
    cols.append(("", 4))
    fixed = 4 + sum(w + 1 for _, w in cols)
    name_w = max(6, min(max(len(g.name) for g in gpus.gpus), width - fixed))
    lines = ["GPU " + "name".ljust(name_w) + "".join(" " + h.rjust(w) for h, w in cols).rstrip()]
    for g in gpus.gpus:
        cells = [f"{g.utilisation}%", f"{fmt_gib(g.memory_used)}/{fmt_gib(g.memory_total)} GiB",
                 "-" if g.temperature is None else f"{g.temperature}°C",
                 "-" if g.power_watts is None else f"{g.power_watts:.0f} W"]
        if mine is not None:
            cells.append(f"{fmt_gib(mine[g.index])} GiB" if mine.get(g.index) else "-")
        cells.append("free" if g.free else "")
        name = g.name if len(g.name) <= name_w else g.name[:name_w - 1] + "…"
        lines.append(f"{g.index:>3} " + name.ljust(name_w)
                     + "".join(" " + c.rjust(w) for c, (_, w) in zip(cells, cols)).rstrip())
    return lines


def process_table(rows: list[RunGpuMemory], width: int = 80) -> list[str]:
    """One line per (run, process, GPU): the run id, the pid, the GPU, the memory it holds there."""
    if not rows:
        return []
    run_w = max(3, min(max(len(r.run) for r in rows), width - 26))
    lines = ["run".ljust(run_w) + "      pid  GPU    memory"]
    for r in rows:
        run = r.run if len(r.run) <= run_w else "…" + r.run[-(run_w - 1):]
        mem = f"{fmt_gib(r.memory)} GiB" if r.memory else "?"
        lines.append(f"{run.ljust(run_w)} {r.pid:>8} {r.gpu:>4} {mem:>9}")
    return lines


def top_text(s: SystemSample, rows: list[RunGpuMemory], runs_dir: str, width: int = 80) -> str:
    """What `workbench top` prints for one sample."""
    from workbench.core.rundir import hostname

    head = SEP.join(["workbench top", hostname(), time.strftime("%H:%M:%S", time.localtime(s.time))])
    lines = [head, SEP.join(host_parts(s, cores=True)) + f" (disk of {runs_dir})"]
    lines += gpu_table(s.gpu, width)
    if s.gpu.available:
        free = s.gpu.free_indices()
        lines.append(f"{len(free)} of {len(s.gpu.gpus)} GPUs free" + (": " + ", ".join(map(str, free)) if free else ""))
        lines += [""] + (process_table(rows, width) or ["no run of this runs directory holds GPU memory"])
    return "\n".join(lines)


def history_rows(samples: list[SystemSample]) -> tuple[list[dict], list[dict], list[dict]]:
    """Chart rows (x = the sample's time): the host's (``cpu`` %, ``ram`` GiB), and per GPU ``GPU i`` as
    utilisation % and as memory GiB."""
    host, util, mem = [], [], []
    for s in samples:
        host.append({"step": s.time, "cpu": float(s.cpu_percent), "ram": s.ram_used / GIB})
        if s.gpu.available:
            util.append({"step": s.time, **{f"GPU {g.index}": float(g.utilisation) for g in s.gpu.gpus}})
            mem.append({"step": s.time, **{f"GPU {g.index}": g.memory_used / GIB for g in s.gpu.gpus}})
    return host, util, mem
