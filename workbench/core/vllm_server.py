"""The vLLM generation server of a GRPO/RLOO run in server mode: what to start (planned at prepare time into
launch.json's "vllm"), and starting it, waiting for it and stopping it (the runner). Light: no torch, no vllm.

How a recipe asks for vLLM (docs/design.md, "vLLM generation"):
  [train] use_vllm, vllm_mode ("colocate" | "server"), vllm_gpu_memory_utilization, vllm_tensor_parallel_size,
          vllm_max_model_length, ...   trl's own GRPOConfig / RLOOConfig fields, passed to trl as they are
  [vllm]  server_gpus = [1]            server mode: the workbench starts `trl vllm-serve` on these GPUs for the
                                       run (the trainer gets the machine's other GPUs); without it the trainer
                                       connects to a server the user started (vllm_server_host / port)
          port, startup_timeout, args  the loopback port (0: a free one at start), seconds to wait for /health,
                                       extra arguments for `trl vllm-serve` (forwarded to `vllm serve`)
In server mode vllm_gpu_memory_utilization is the server's share of its GPUs (trl reads it only in colocate mode;
the workbench passes it as --gpu-memory-utilization, default 0.9 as `trl vllm-serve`'s own), and the server's
tensor parallel size is len(server_gpus).

Processes: the runner starts the server before the trainer, in the run's session but in a process group of its own
(so the SIGTERM a stop sends to the trainer's group does not cut the generation of the step the trainer finishes),
with SIGKILL as its parent-death signal (it dies with its runner), output to RUN_DIR/vllm.log. It waits for
GET /health (what trl's VLLMClient polls) to answer 200, records vllm_pid / vllm_pgid / vllm_port / vllm_phase in
status.json, gives the trainer WORKBENCH_VLLM_HOST/PORT/GROUP_PORT (entry.py turns them into vllm_server_host,
vllm_server_port, vllm_group_port), and takes the server's whole group down (SIGTERM, then SIGKILL) when the trainer
exits, before it records the final state. lifecycle.processes counts the server's group as the run's, so a server
alive for any reason keeps the run live and `workbench stop` signals it too.

Test-only seam: with WORKBENCH_TEST_VLLM_SERVER=SCRIPT in the environment of ``plan``, the server argv runs
``python SCRIPT`` with the same flags instead of `trl vllm-serve` (tests/fixtures/fake_vllm_server.py answers
/health on CPU). Only loopback addresses are used.
"""
from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from workbench.core.recipe import Recipe
from workbench.core.stages import names

LOG_NAME = "vllm.log"
HOST = "127.0.0.1"
PORT_TOKEN = "{port}"  # the argv word the runner replaces with the port it picked
TEST_SERVER_ENV = "WORKBENCH_TEST_VLLM_SERVER"
STAGES = names("vllm")  # the stages declared vllm (core/stages.py)
SERVER_MEMORY_DEFAULT = 0.9  # trl vllm-serve's --gpu-memory-utilization default (a GPU of its own)
STARTUP_TIMEOUT = 600.0
STOP_GRACE = 10.0
SERVE_MODULE = ["-m", "trl.scripts.vllm_serve"]  # what `trl vllm-serve` runs (trl/cli/commands/vllm_serve.py)


# -- the recipe's choice ------------------------------------------------------------------------------------------
def mode(recipe: Recipe) -> str | None:
    """None (no vLLM), "colocate" or "server" (trl's default mode is colocate)."""
    train = recipe.section("train")
    if train.get("use_vllm") is not True:
        return None
    return train.get("vllm_mode", "colocate")


def server_gpus(recipe: Recipe) -> list[int]:
    gpus = recipe.get("vllm.server_gpus", [])
    return [g for g in gpus if isinstance(g, int) and not isinstance(g, bool)] if isinstance(gpus, list) else []


def starts_server(recipe: Recipe) -> bool:
    """The workbench starts a vLLM server for this run (server mode with [vllm] server_gpus)."""
    return recipe.stage in STAGES and mode(recipe) == "server" and bool(server_gpus(recipe))


def server_model(recipe: Recipe, runs_dir: Path) -> str:
    """The model the server loads: the folder (or hub id) the trainer starts from."""
    from workbench.core import models

    ref = models.parse_model_ref(str(recipe.get("model.path", "")), recipe.resolve_path)
    if ref.kind == "builtin":
        return str(models.builtin_dir(ref.value))
    if ref.kind == "run":
        return str(models.run_final(runs_dir, ref.value))
    return ref.value


def plan(recipe: Recipe, run_dir: Path) -> dict | None:
    """launch.json's "vllm": the server's argv (PORT_TOKEN where the port goes), env delta, GPUs and timeouts;
    None when the run starts no server."""
    if not starts_server(recipe):
        return None
    train, section = recipe.section("train"), recipe.section("vllm")
    gpus = server_gpus(recipe)
    memory = train.get("vllm_gpu_memory_utilization", SERVER_MEMORY_DEFAULT)
    flags = ["--model", server_model(recipe, Path(run_dir).parent), "--host", HOST, "--port", PORT_TOKEN,
             "--tensor-parallel-size", str(len(gpus)), "--gpu-memory-utilization", str(memory)]
    if train.get("vllm_max_model_length"):
        flags += ["--max-model-len", str(train["vllm_max_model_length"])]
    if recipe.get("model.dtype", "auto") not in ("auto", None):
        flags += ["--dtype", str(recipe.get("model.dtype"))]
    if recipe.get("model.trust_remote_code") is True:
        flags += ["--trust-remote-code"]
    flags += [str(a) for a in section.get("args", []) or []]
    fake = os.environ.get(TEST_SERVER_ENV)
    argv = [sys.executable, fake, *flags] if fake else [sys.executable, *SERVE_MODULE, *flags]
    return {
        "argv": argv,
        "env": {"CUDA_VISIBLE_DEVICES": ",".join(map(str, gpus)), "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
                "PYTHONUNBUFFERED": "1", "WORKBENCH_RUN_DIR": str(run_dir)},
        "gpus": gpus,
        "host": HOST,
        "port": int(section.get("port", 0) or 0),
        "group_port": int(train.get("vllm_group_port", 0) or 0),
        "startup_timeout": float(section.get("startup_timeout", STARTUP_TIMEOUT)),
        "stop_grace": STOP_GRACE,
        "log": LOG_NAME,
    }


# -- GPUs ---------------------------------------------------------------------------------------------------------
def gpu_inventory() -> tuple[int, str]:
    """(GPUs on this machine, why none) from NVML (gpus.snapshot, the system panel's reading), else NVIDIA's /proc
    entries (a driver without nvidia-ml-py). Physical indices, whatever CUDA_VISIBLE_DEVICES says."""
    from workbench.core import gpus

    snap = gpus.snapshot()
    if snap.available:
        return len(snap.gpus), ""
    proc = Path("/proc/driver/nvidia/gpus")
    n = len(list(proc.iterdir())) if proc.is_dir() else 0
    return n, "" if n else snap.reason or "no GPU"


def visible_gpus(count: int, env: dict | None = None) -> list[int] | None:
    """The GPU indices CUDA_VISIBLE_DEVICES leaves visible (all ``count`` when unset); None when it names GPUs by
    UUID (or otherwise not by index)."""
    raw = (os.environ if env is None else env).get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return list(range(count))
    words = [w.strip() for w in raw.split(",") if w.strip()]
    if not all(w.lstrip("-").isdigit() for w in words):
        return None
    out = []
    for w in words:
        if int(w) < 0:
            break  # CUDA stops at the first invalid index
        out.append(int(w))
    return out


def training_gpus(server: list[int], visible: list[int]) -> list[int]:
    return [g for g in visible if g not in server]


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# -- the process (the runner's side) --------------------------------------------------------------------------------
def healthy(url: str, timeout: float = 2.0) -> bool:
    import urllib.request  # here: it pulls in http.client and ssl, which validation and the TUI do not need

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
    try:
        with opener.open(url, timeout=timeout) as r:
            return r.status == 200
    except (OSError, ValueError):
        return False


def _last_line(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            lines = [ln.strip() for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def _own_group_dying_with(parent: int):
    """preexec_fn: a process group of its own, and SIGKILL when its parent (the runner) dies."""
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        prctl = None

    def setup() -> None:
        os.setpgid(0, 0)
        if prctl is not None:
            prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)  # the runner died before the death signal was armed

    return setup


@dataclass
class Server:
    proc: "subprocess.Popen"  # noqa: F821 - subprocess is imported where a server starts (light validation)
    port: int
    group_port: int
    url: str
    log: Path
    stop_grace: float

    @classmethod
    def start(cls, run_dir: Path, spec: dict, base_env: dict) -> Server:
        """Start the planned server (OSError when it cannot be started)."""
        import subprocess

        port = int(spec.get("port") or 0) or free_port()
        group_port = int(spec.get("group_port") or 0) or free_port()
        argv = [str(port) if a == PORT_TOKEN else a for a in spec["argv"]]
        log = Path(run_dir) / spec.get("log", LOG_NAME)
        with open(log, "ab", buffering=0) as out:
            out.write(f"[workbench] starting the vLLM server: {' '.join(argv)}\n".encode())
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env={**base_env, **spec.get("env", {})}, close_fds=True,
                                    preexec_fn=_own_group_dying_with(os.getpid()))
        host = spec.get("host", HOST)
        return cls(proc, port, group_port, f"http://{host}:{port}/health", log,
                   float(spec.get("stop_grace", STOP_GRACE)))

    def status_fields(self) -> dict:
        return {"vllm_pid": self.proc.pid, "vllm_pgid": self.proc.pid, "vllm_port": self.port}

    def trainer_env(self) -> dict:
        return {"WORKBENCH_VLLM_HOST": HOST, "WORKBENCH_VLLM_PORT": str(self.port),
                "WORKBENCH_VLLM_GROUP_PORT": str(self.group_port)}

    def wait_ready(self, timeout: float, abort, beat, every: float = 0.5) -> tuple[str, str]:
        """("ready", ""), ("stopped", why) when ``abort()`` returns a reason, or ("failed", error)."""
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                last = _last_line(self.log)
                return "failed", (f"the vLLM server exited with code {rc} before it was ready"
                                  + (f": {last}" if last else "") + f" (see {self.log})")
            if healthy(self.url):
                return "ready", ""
            why = abort()
            if why:
                return "stopped", why
            if time.monotonic() >= deadline:
                last = _last_line(self.log)
                return "failed", (f"the vLLM server did not answer {self.url} within {timeout:g} s"
                                  + (f"; last line of {self.log.name}: {last}" if last else "")
                                  + " (raise [vllm] startup_timeout for a big model)")
            beat()
            time.sleep(every)

    def alive(self) -> bool:
        from workbench.core.lifecycle import _group_members

        return self.proc.poll() is None or bool(_group_members(self.proc.pid))

    def shutdown(self) -> int | None:
        """SIGTERM to the server's group, SIGKILL after stop_grace; returns the server's exit code."""
        for sig, wait in ((signal.SIGTERM, self.stop_grace), (signal.SIGKILL, 5.0)):
            if not self.alive():
                break
            try:
                os.killpg(self.proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
            deadline = time.monotonic() + wait
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.05)
        import subprocess

        try:
            return self.proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            return None


# -- its log (workbench tail RUN --vllm) ----------------------------------------------------------------------------
def follow_log(rd, write, last_lines: int = 20, poll: float = 0.5) -> None:
    """Write RUN_DIR/vllm.log's last ``last_lines`` lines (0: all), then what is appended while the run is live,
    in complete lines, until the run has ended. Reads only what is new on each poll."""
    from workbench.core import lifecycle

    path = Path(rd.path) / LOG_NAME
    pos, rest = 0, b""
    if last_lines and path.is_file():
        size = path.stat().st_size
        with open(path, "rb") as f:
            f.seek(max(0, size - 65536))
            tail = f.read()
        pos = size
        for line in tail.decode(errors="replace").splitlines()[-last_lines:]:
            write(line)
    while True:
        live = lifecycle.status(rd).get("state") in lifecycle.LIVE_STATES
        if path.is_file():
            with open(path, "rb") as f:
                f.seek(pos)
                chunk = f.read()
            pos += len(chunk)
            *lines, rest = (rest + chunk).split(b"\n")
            for line in lines:
                write(line.decode(errors="replace").rstrip("\r"))
        if not live:
            if rest:
                write(rest.decode(errors="replace"))
            return
        time.sleep(poll)
