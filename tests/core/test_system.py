"""The system panel's core (workbench.core.system) and `workbench top`, against a stand-in NVML: two GPUs, GPU 0
busy with the process of a fake live run."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT
from tests.fake_nvml import GIB, start_live_run, two_gpus
from workbench import cli
from workbench.core import gpus, system
from workbench.core.gpus import GpuSnapshot
from workbench.core.rundir import RunDir

RUN = "20260101-000000-grpo-arith"


@pytest.fixture
def live_run(runs_dir):
    d, proc = start_live_run(runs_dir, RUN)
    yield d, proc
    proc.kill()
    proc.wait(timeout=10)


@pytest.fixture
def nvml(live_run):
    """The stand-in NVML, GPU 0 held by the live run's process."""
    fake = two_gpus(live_run[1].pid)
    gpus.use_nvml(fake)
    yield fake
    gpus.use_nvml(None)


@pytest.fixture
def no_nvml(monkeypatch):
    monkeypatch.setattr(gpus, "_nvml", None)
    monkeypatch.setattr(gpus, "_nvml_error", "no GPU: NVML unavailable (NVML Shared Library Not Found)")


def sample_with(gpu: GpuSnapshot, cpu: float = 37.0) -> system.SystemSample:
    return system.SystemSample(time.time(), cpu, 16, 41 * GIB, 128 * GIB, 120 * GIB, "/runs", gpu)


def test_free_indices_and_the_busy_gpu(nvml):
    snap = gpus.snapshot()
    assert snap.available and [g.index for g in snap.gpus] == [0, 1]
    assert snap.free_indices() == [1]
    busy = snap.gpus[0]
    assert (busy.utilisation, busy.temperature, busy.power_watts) == (97, 64, pytest.approx(612.4))
    assert busy.name == "NVIDIA H100 80GB HBM3"  # bytes from NVML decoded


def test_gpu_memory_of_a_live_runs_processes(runs_dir, live_run, nvml):
    d, proc = live_run
    snap = gpus.snapshot()
    rows = system.run_gpu_memory(snap, [(RunDir(d), RunDir(d).read_status())])
    assert rows == [system.RunGpuMemory(RUN, proc.pid, 0, 20 * GIB)]
    assert system.live_run_gpu_memory(snap, runs_dir) == rows  # found by listing the runs directory


def test_a_pid_of_no_live_run_is_nobodys(runs_dir, live_run, nvml):
    d, proc = live_run
    nvml.gpus[1]["procs"] = {1: 5 * GIB}  # some other process (init) on GPU 1
    status = json.loads((d / "status.json").read_text())
    finished = dict(status, state="completed")
    rows = system.run_gpu_memory(gpus.snapshot(), [(RunDir(d), finished)])
    assert rows == []  # a finished run holds nothing, even if its old pid is on a GPU
    rows = system.run_gpu_memory(gpus.snapshot(), [(RunDir(d), status)])
    assert [(r.pid, r.gpu) for r in rows] == [(proc.pid, 0)]


def test_runs_list_line_with_gpus(nvml):
    line = system.status_line(sample_with(gpus.snapshot()), 78)
    assert line == "GPU 1/2 free · CPU 37% · RAM 41/128 GiB · disk 120 GiB free"


@pytest.mark.parametrize("width", [78, 60, 40, 20])
def test_runs_list_line_without_gpu_is_one_line_that_fits(no_nvml, width):
    line = system.status_line(sample_with(gpus.snapshot()), width)
    assert "\n" not in line and len(line) <= width
    assert line.startswith("no GPU")
    if width >= 60:
        assert "CPU 37%" in line and "RAM 41/128 GiB" in line


def test_runs_list_line_keeps_a_reason_whole_where_there_is_room():
    snap = GpuSnapshot(False, reason="no GPU: nvidia-ml-py is not installed")
    line = system.status_line(sample_with(snap), 120)
    assert line == "no GPU (nvidia-ml-py is not installed) · CPU 37% · RAM 41/128 GiB · disk 120 GiB free"
    assert system.status_line(sample_with(snap), 78) == \
        "no GPU (nvidia-ml-py is not i…) · CPU 37% · RAM 41/128 GiB · disk 120 GiB free"


def test_gpu_table_names_memory_temperature_power_and_this_runs_share(nvml):
    lines = system.gpu_table(gpus.snapshot(), 80, mine={0: 20 * GIB})
    assert len(lines) == 3 and all(len(line) <= 80 for line in lines)
    assert "util" in lines[0] and "temp" in lines[0] and "power" in lines[0] and "run" in lines[0]
    assert "97%" in lines[1] and "21/80 GiB" in lines[1] and "64°C" in lines[1] and "612 W" in lines[1]
    assert lines[1].rstrip().endswith("20 GiB")  # this run's memory, and GPU 0 is not free
    assert lines[2].rstrip().endswith("free")


def test_sampler_samples_at_most_once_a_second_and_keeps_a_bounded_history(tmp_path, no_nvml):
    sampler = system.SystemSampler(tmp_path / "not-made-yet", keep=3, min_interval=0.05)
    first = sampler.sample()
    assert sampler.sample() is first  # asked again at once: the same sample
    assert 0.0 <= first.cpu_percent <= 100.0 and first.ram_total > first.ram_used > 0
    assert first.disk_free and first.disk_path == str(tmp_path)  # the nearest existing folder's disk
    for _ in range(5):
        time.sleep(0.06)
        sampler.sample()
    assert len(sampler.samples()) == 3


def test_top_once_shows_gpus_and_the_runs_gpu_memory(runs_dir, live_run, nvml, capsys):
    assert cli.main(["--runs-dir", str(runs_dir), "top", "--once"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "CPU" in lines[1] and "RAM" in lines[1] and "GiB free" in lines[1]
    assert any("NVIDIA H100" in line and "97%" in line for line in lines)
    assert "1 of 2 GPUs free: 1" in out
    row = next(line for line in lines if line.startswith(RUN))
    assert str(live_run[1].pid) in row and row.split()[-2:] == ["20", "GiB"]


def test_top_once_without_gpu_says_so_in_one_line(runs_dir, no_nvml, capsys):
    assert cli.main(["--runs-dir", str(runs_dir), "top", "--once"]) == 0
    gpu_lines = [line for line in capsys.readouterr().out.splitlines() if "GPU" in line]
    assert gpu_lines == ["no GPU (NVML Shared Library Not Found)"]


def test_top_refreshes_until_ctrl_c_and_exits_0(runs_dir):
    code = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            f"from workbench.cli import main; sys.exit(main(['--runs-dir', {str(runs_dir)!r}, 'top']))")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        time.sleep(2.5)  # two or three snapshots
    finally:
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert out.count("workbench top") >= 2 and "Traceback" not in err
