"""The run directory: the only link between the UI/CLI processes and a training process tree.

  runs/<run-id>/
    recipe.toml     frozen copy of what was launched (overrides applied, paths absolute)
    launch.json     argv, env delta, host, cwd: enough to reproduce or show the command
    status.json     state, pids, times, exit code, error summary (written atomically)
    metrics.jsonl   one object per log event, plus lifecycle events (train_begin, checkpoint, train_end)
    samples.jsonl   one object per sampled completion (GRPO): step, prompt, completion, rewards, advantage
    stdout.log      the training child's output
    heartbeat       touched every few seconds by the runner while the process tree lives
    stop.request    created to ask the trainer to checkpoint and stop
    checkpoints/    the trainer's output_dir;  final/  the final model (used by `run:RUN_ID`)

States and who may write them: workbench/core/lifecycle.py (the only writer of ``state``). Everyone else
updates reported fields (pids, phase, outcome, error) with ``write_status``. ``StatusDir`` is what a run shares with
a pipeline's directory (workbench/core/pipedir.py): the locked status.json, the heartbeat, the stop request.
"""
from __future__ import annotations

import datetime as dt
import fcntl
import os
import re
import socket
import time
from pathlib import Path

from workbench.core.atomic import read_json, write_json_atomic

FINAL_STATES = ("completed", "failed", "stopped", "killed", "lost")  # the meaning lives in core/lifecycle.py
LIVE_STATES = ("queued", "running")
HEARTBEAT_EVERY = 5.0
UNSET = object()  # write_status(key=UNSET) removes the key


class StatusDir:
    """A supervised object's directory: status.json updated under a lock, a heartbeat, a stop request.
    A run (RunDir) and a pipeline (workbench.core.pipedir.PipelineDir) are each one."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @property
    def id(self) -> str:
        return self.path.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    status_path = property(lambda self: self.path / "status.json")
    heartbeat_path = property(lambda self: self.path / "heartbeat")
    stop_request_path = property(lambda self: self.path / "stop.request")

    def exists(self) -> bool:
        return self.status_path.is_file()

    @classmethod
    def create(cls, parent: Path, name: str):
        """A new, empty directory in parent (readable by the user only), with a unique id: a time stamp and name."""
        parent.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")[:40] or "run"
        for n in range(1, 1000):
            path = parent / (f"{stamp}-{slug}" + (f"-{n}" if n > 1 else ""))
            try:
                path.mkdir(mode=0o700)
            except FileExistsError:
                continue
            return cls(path)
        raise RuntimeError(f"could not create a directory in {parent}")

    # -- status ----------------------------------------------------------------------------------------------
    def read_status(self) -> dict:
        return read_json(self.status_path, default={}) or {}

    def write_status(self, **updates) -> dict:
        """Update reported fields (phase, outcome, pids, ...). States are written only by workbench.core.lifecycle."""
        return self.update_status(None, **updates)

    def update_status(self, check=None, **updates) -> dict:
        """Read-modify-write under a lock: the launcher, the runner, the trainer and a settling reader may update
        at the same moment, and an unlocked update could undo another's (e.g. put 'running' back to 'queued').
        ``check(current)`` may raise to refuse the update; a value of UNSET removes the key."""
        def apply(status: dict) -> None:
            if check is not None:
                check(status)
            for k, v in updates.items():
                if v is UNSET:
                    status.pop(k, None)
                else:
                    status[k] = v

        return self.edit_status(apply)

    def edit_status(self, edit) -> dict:
        """``edit(status)`` changes the status dict in place, under the lock; the result is written atomically."""
        with open(self.path / ".status.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            status = self.read_status()
            edit(status)
            write_json_atomic(self.status_path, status)
        return status

    def touch_heartbeat(self) -> None:
        with open(self.heartbeat_path, "w") as f:
            f.write(f"{time.time():.3f}\n")

    def heartbeat_age(self) -> float | None:
        try:
            return time.time() - self.heartbeat_path.stat().st_mtime
        except FileNotFoundError:
            return None

    def stop_requested(self) -> bool:
        return self.stop_request_path.exists()


class RunDir(StatusDir):
    """One run's directory (the layout above)."""

    recipe_path = property(lambda self: self.path / "recipe.toml")
    launch_path = property(lambda self: self.path / "launch.json")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    samples_path = property(lambda self: self.path / "samples.jsonl")
    stdout_path = property(lambda self: self.path / "stdout.log")
    runner_log_path = property(lambda self: self.path / "runner.log")
    checkpoints = property(lambda self: self.path / "checkpoints")
    final_model = property(lambda self: self.path / "final")

    def has_event(self, event: str) -> bool:
        """Whether metrics.jsonl holds a lifecycle event (scans from the end; cheap for finished runs)."""
        try:
            with open(self.metrics_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 65536))
                tail = f.read()
        except FileNotFoundError:
            return False
        # Only the latest attempt counts: events before a "resume" belong to the superseded one.
        return tail.rfind(f'"event": "{event}"'.encode()) > tail.rfind(b'"event": "resume"')


def hostname() -> str:
    return socket.gethostname()


def boot_time() -> float | None:
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("btime"):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def pid_alive(pid: int | None, must_contain: str = "workbench") -> bool:
    """True when pid is a live (not zombie) process whose command line mentions workbench (guards pid reuse)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        return True  # no procfs: trust kill(0)
    try:
        stat = (proc / "stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return False
        return must_contain in (proc / "cmdline").read_bytes().decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
