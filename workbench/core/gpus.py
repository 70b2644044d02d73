"""What the machine's GPUs are doing, read through NVML (the `nvidia-ml-py` package, module `pynvml`). Light: no
torch. Shared by the system panel (`workbench top`, the monitor's System tab, the runs list's free-GPU line) and
the run queue (a queued run starts when the GPUs it needs are free).

Without NVML (no driver, no package) ``snapshot()`` returns ``GpuSnapshot(available=False, reason=...)``: callers say
so in one line. Tests put a stand-in module in place of pynvml with ``use_nvml(module)``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

FREE_MEMORY_FRACTION = 0.05  # a GPU whose used memory is under 5 % and ...
FREE_UTILISATION = 10  # ... utilisation under 10 % counts as free


@dataclass
class Gpu:
    index: int
    name: str
    utilisation: int  # percent
    memory_used: int  # bytes
    memory_total: int  # bytes
    temperature: int | None = None  # deg C
    power_watts: float | None = None
    processes: dict[int, int] = field(default_factory=dict)  # pid -> GPU memory bytes

    @property
    def free(self) -> bool:
        return (self.memory_used <= FREE_MEMORY_FRACTION * self.memory_total
                and self.utilisation < FREE_UTILISATION and not self.processes)


@dataclass
class GpuSnapshot:
    available: bool
    gpus: list[Gpu] = field(default_factory=list)
    reason: str = ""
    time: float = 0.0

    def free_indices(self) -> list[int]:
        return [g.index for g in self.gpus if g.free]


_nvml = None  # the module in use (pynvml, or a test's stand-in)
_nvml_error: str | None = None


def use_nvml(module) -> None:
    """Use this module as NVML (tests: a stand-in with the same functions); None to forget."""
    global _nvml, _nvml_error
    _nvml, _nvml_error = module, None


def _load():
    global _nvml, _nvml_error
    if _nvml is not None or _nvml_error is not None:
        return _nvml
    try:
        import pynvml  # nvidia-ml-py: small, pure Python (ctypes over libnvidia-ml)

        pynvml.nvmlInit()
        _nvml = pynvml
    except Exception as e:  # noqa: BLE001 - ImportError, or NVMLError when there is no driver
        _nvml_error = ("no GPU: nvidia-ml-py is not installed" if isinstance(e, ImportError)
                       else f"no GPU: NVML unavailable ({e})")
    return _nvml


def snapshot() -> GpuSnapshot:
    nv = _load()
    if nv is None:
        return GpuSnapshot(False, reason=_nvml_error or "no GPU", time=time.time())
    try:
        gpus = []
        for i in range(nv.nvmlDeviceGetCount()):
            h = nv.nvmlDeviceGetHandleByIndex(i)
            mem = nv.nvmlDeviceGetMemoryInfo(h)
            util = nv.nvmlDeviceGetUtilizationRates(h)
            name = nv.nvmlDeviceGetName(h)
            gpus.append(Gpu(i, name.decode() if isinstance(name, bytes) else str(name), int(util.gpu),
                            int(mem.used), int(mem.total), _try(lambda: int(nv.nvmlDeviceGetTemperature(h, 0))),
                            _try(lambda: nv.nvmlDeviceGetPowerUsage(h) / 1000.0), _processes(nv, h)))
    except Exception as e:  # noqa: BLE001
        return GpuSnapshot(False, reason=f"NVML error: {e}", time=time.time())
    if not gpus:
        return GpuSnapshot(False, reason="no GPU: NVML sees none", time=time.time())
    return GpuSnapshot(True, gpus, time=time.time())


def _try(read):
    try:
        return read()
    except Exception:  # noqa: BLE001 - a field this GPU does not report
        return None


def _processes(nv, handle) -> dict[int, int]:
    out: dict[int, int] = {}
    for getter in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
        fn = getattr(nv, getter, None)
        for p in (_try(lambda: fn(handle)) or []) if fn else []:
            out[int(p.pid)] = int(getattr(p, "usedGpuMemory", 0) or 0)
    return out
