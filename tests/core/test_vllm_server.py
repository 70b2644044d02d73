"""vLLM server mode's process lifecycle on a CPU: the real supervisor and runner start a stand-in server
(tests/fixtures/fake_vllm_server.py, through the WORKBENCH_TEST_VLLM_SERVER seam) before the fake trainer, wait for
its /health, and take it down (its worker too) when the run ends, is stopped, or its trainer is killed; a server
that never answers, or dies while loading, fails the run with a clear error and leaves no process."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest

from tests.conftest import FIXTURES, workbench_cmd
from tests.core.fakes import FAKE, alive, recipe_for, wait_training, wait_until
from workbench.core import lifecycle, supervisor, vllm_server
from workbench.core.launch import LaunchPlan
from workbench.core.rundir import RunDir

FAKE_SERVER = FIXTURES / "fake_vllm_server.py"


def vllm_recipe(mode: str, startup_timeout: float):
    r = recipe_for(mode)
    r.set("train.use_vllm", True)
    r.set("train.vllm_mode", "server")
    r.set("vllm.server_gpus", [1])
    r.set("vllm.startup_timeout", startup_timeout)
    return r


@pytest.fixture
def launch_vllm(runs_dir, monkeypatch):
    """Launch the fake trainer in MODE with the stand-in server in SERVER_MODE; afterwards nothing may be left."""
    monkeypatch.setenv(vllm_server.TEST_SERVER_ENV, str(FAKE_SERVER))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")  # the runner's machine: three GPUs, the server takes 1
    launched: list[supervisor.Launched] = []

    def go(mode: str, server_mode: str = "healthy", startup_timeout: float = 20.0,
           stop_grace: float | None = None) -> supervisor.Launched:
        monkeypatch.setenv("FAKE_VLLM_MODE", server_mode)

        def plan(recipe, run_dir):
            server = vllm_server.plan(recipe, run_dir)
            if stop_grace is not None:
                server["stop_grace"] = stop_grace
            return LaunchPlan([sys.executable, str(FAKE), mode, str(run_dir)], {"WORKBENCH_RUN_DIR": str(run_dir)},
                              server=server)

        monkeypatch.setattr(supervisor, "launch_plan", plan)
        got = supervisor.launch(vllm_recipe(mode, startup_timeout), runs_dir)
        launched.append(got)
        return got

    yield go
    for got in launched:  # leave no process behind, whatever the test did
        st = got.run.read_status()
        for pgid in (got.process.pid, st.get("vllm_pgid")):
            try:
                os.killpg(int(pgid), signal.SIGKILL) if pgid else None
            except ProcessLookupError:
                pass
        for pid in lifecycle.processes(got.run, st):
            os.kill(pid, signal.SIGKILL)
        got.process.wait(timeout=10)


def server_pids(rd: RunDir) -> list[int]:
    """The stand-in server and its worker, from vllm.log."""
    st = rd.read_status()
    worker = re.search(r"worker pid (\d+)", (rd.path / "vllm.log").read_text())
    return [p for p in (st.get("vllm_pid"), int(worker.group(1)) if worker else None) if p]


def assert_nothing_left(rd: RunDir) -> None:
    pids = server_pids(rd)
    assert pids, "the server never logged its pids"
    wait_until(lambda: not any(alive(p) for p in pids), 10, "the vLLM server and its worker to be gone")
    wait_until(lambda: lifecycle.processes(rd) == [], 10, "the runner to exit after the final state")


def test_server_runs_before_the_trainer_and_goes_with_it(launch_vllm):
    got = launch_vllm("succeed")
    rd = got.run
    assert got.process.wait(timeout=30) == 0
    st = supervisor.status(rd)
    assert st["state"] == "completed", st
    assert st["vllm_phase"] == "stopped" and st["trainer_gpus"] == "0,2"
    log = rd.stdout_path.read_text()
    assert f"vllm server http://127.0.0.1:{st['vllm_port']}/health answered 200" in log
    assert "CUDA_VISIBLE_DEVICES=0,2" in log  # the trainer gets the GPUs the server does not use
    server_log = (rd.path / "vllm.log").read_text()
    assert "CUDA_VISIBLE_DEVICES=1" in server_log and f"listening on 127.0.0.1:{st['vllm_port']}" in server_log
    launch = json.loads(rd.launch_path.read_text())
    argv = launch["vllm"]["argv"]
    assert argv[:2] == [sys.executable, str(FAKE_SERVER)]
    assert argv[argv.index("--port") + 1] == "{port}" and argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("--tensor-parallel-size") + 1] == "1"
    assert_nothing_left(rd)


def test_stop_takes_the_server_down(launch_vllm):
    got = launch_vllm("obey")
    rd = got.run
    wait_training(rd)
    pids = server_pids(rd)
    assert all(alive(p) for p in pids)
    st = supervisor.stop(rd, grace=15)
    assert st["state"] == "stopped", st
    assert_nothing_left(rd)


def test_a_hung_run_is_killed_with_its_server(launch_vllm):
    got = launch_vllm("hang", server_mode="stubborn")  # deaf to stop.request and to SIGTERM, both
    rd = got.run
    wait_training(rd)
    st = supervisor.stop(rd, grace=0.5, term_grace=0.5)
    assert st["state"] == "stopped", st  # settled by the reader: the runner went with the SIGKILL
    assert_nothing_left(rd)


def test_sigkill_of_the_trainer_takes_the_server_down(launch_vllm):
    got = launch_vllm("sleep")
    rd = got.run
    st = wait_training(rd)
    os.kill(st["trainer_pid"], signal.SIGKILL)
    assert got.process.wait(timeout=30) == 0
    assert supervisor.status(rd)["state"] == "killed"
    assert_nothing_left(rd)


def test_a_server_that_never_answers_fails_the_run(launch_vllm):
    got = launch_vllm("succeed", server_mode="never", startup_timeout=1.5)
    rd = got.run
    assert got.process.wait(timeout=30) == 1
    st = supervisor.status(rd)
    assert st["state"] == "failed"
    assert f"the vLLM server did not answer http://127.0.0.1:{st['vllm_port']}/health within 1.5 s" in st["error"]
    assert "startup_timeout" in st["error"]
    assert "trainer_pid" not in st  # the trainer never started
    assert_nothing_left(rd)


def test_a_server_that_dies_while_loading_fails_the_run(launch_vllm):
    got = launch_vllm("succeed", server_mode="exit")
    rd = got.run
    assert got.process.wait(timeout=30) == 1
    st = supervisor.status(rd)
    assert st["state"] == "failed"
    assert "the vLLM server exited with code 3 before it was ready" in st["error"]
    assert "architecture is not supported" in st["error"]
    assert lifecycle.processes(rd) == []


def test_a_server_deaf_to_sigterm_is_killed(launch_vllm):
    got = launch_vllm("succeed", server_mode="stubborn", stop_grace=0.5)
    assert got.process.wait(timeout=30) == 0
    assert supervisor.status(got.run)["state"] == "completed"
    assert_nothing_left(got.run)


def test_stop_while_the_server_starts(launch_vllm):
    got = launch_vllm("succeed", server_mode="never", startup_timeout=60)
    rd = got.run
    wait_until(lambda: rd.read_status().get("vllm_phase") == "starting", what="the server starting")
    st = supervisor.stop(rd, grace=15)
    assert st["state"] == "stopped" and "while the vLLM server was starting" in st["note"]
    assert_nothing_left(rd)


def test_a_killed_runner_takes_its_server_along(launch_vllm):
    got = launch_vllm("sleep")
    rd = got.run
    st = wait_training(rd)
    os.kill(got.process.pid, signal.SIGKILL)  # the runner alone (the OOM killer's pick)
    got.process.wait(timeout=10)
    wait_until(lambda: not alive(st["vllm_pid"]), 10, "the server to die with its runner")
    os.kill(st["trainer_pid"], signal.SIGKILL)  # the orphaned trainer would fail at its next generation
    # the server's orphaned worker serves nobody now: the reader that settles the run ends it too
    wait_until(lambda: supervisor.status(rd)["state"] == "killed", 10, "the run to settle")
    assert_nothing_left(rd)


def test_tail_vllm_shows_the_server_log(launch_vllm, runs_dir):
    got = launch_vllm("succeed")
    assert got.process.wait(timeout=30) == 0
    proc = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "tail", got.run.id, "--vllm"),
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "fake vllm: listening on 127.0.0.1" in proc.stdout
    show = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "show", got.run.id), capture_output=True,
                          text=True, timeout=30)
    assert "vllm      server on GPU(s) [1]" in show.stdout and "--vllm" in show.stdout


def test_tail_vllm_of_a_run_without_a_server(runs_dir, monkeypatch):
    monkeypatch.setattr(supervisor, "launch_plan", lambda recipe, run_dir: LaunchPlan(
        [sys.executable, str(FAKE), "succeed", str(run_dir)], {"WORKBENCH_RUN_DIR": str(run_dir)}))
    got = supervisor.launch(recipe_for("succeed"), runs_dir)
    got.process.wait(timeout=30)
    proc = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "tail", got.run.id, "--vllm"),
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "has no vLLM server" in proc.stderr
