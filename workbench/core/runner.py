"""The runner: a small light process that owns one run's process tree and records how it ended.

    python -m workbench.core.runner RUN_DIR

Started by ``supervisor.launch`` in its own session (so closing the terminal, the TUI or the SSH connection
never reaches it). It starts the trainer argv from launch.json in the same process group, stdout/stderr to
stdout.log, touches the heartbeat while the tree lives, and when the trainer exits writes the final state:

  completed  the trainer reported train_end (exit 0, or a known abort at interpreter exit after train_end)
  stopped    a stop was requested and the trainer ended
  failed     the trainer exited non-zero (error summary from the trainer, or the log's last line)
  killed     the trainer died by a signal (SIGKILL: often the OOM killer) without finishing
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from workbench.core.atomic import read_json
from workbench.core.rundir import HEARTBEAT_EVERY, RunDir, boot_time, hostname

OOM_HINT = ("out of memory: lower per_device_train_batch_size or max length, use LoRA ([peft] method = \"lora\"), "
            "or a higher DeepSpeed ZeRO stage")


def last_log_line(rd: RunDir) -> str:
    try:
        with open(rd.stdout_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            lines = [ln.strip() for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
    except FileNotFoundError:
        return ""
    return lines[-1] if lines else ""


def final_state(rd: RunDir, rc: int, terminated: bool) -> dict:
    """Decide the final state from the exit code, the trainer's own report and the metrics' end event."""
    status = rd.read_status()
    outcome = status.get("outcome")  # written by the trainer: completed | stopped | failed
    ended = rd.has_event("train_end")
    stop = rd.stop_requested() or terminated
    out: dict = {"exit_code": rc}
    if rc < 0:
        name = signal.Signals(-rc).name if -rc in signal.Signals._value2member_map_ else str(-rc)
        out["signal"] = name
        if outcome in ("completed", "stopped") and ended:
            out["state"] = outcome
        elif stop:
            out["state"] = "stopped"
        else:
            out["state"] = "killed"
            out["error"] = f"killed by {name}" + (" (often the out-of-memory killer)" if name == "SIGKILL" else "")
    elif outcome in ("completed", "stopped") and ended:
        out["state"] = outcome
        if rc != 0:
            out["note"] = f"exit code {rc} after training ended (abort at interpreter exit); results are complete"
    elif rc == 0 and stop:
        out["state"] = "stopped"
    elif rc == 0:
        out["state"] = "completed" if ended else "failed"
        if not ended:
            out["error"] = "the trainer exited without finishing training"
    else:
        out["state"] = "stopped" if stop and outcome != "failed" else "failed"
        if out["state"] == "failed":
            out["error"] = status.get("error") or last_log_line(rd) or f"exit code {rc}"
    err = (out.get("error") or "").lower()
    if "out of memory" in err or "outofmemory" in err:
        out["hint"] = OOM_HINT
    return out


def main(run_dir: str) -> int:
    rd = RunDir(run_dir)
    launch = read_json(rd.launch_path, {})
    terminated = False

    def on_term(signum, frame):
        nonlocal terminated
        terminated = True  # the trainer is in our process group and got the same signal

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    env = {**os.environ, **launch.get("env", {})}
    started = time.time()
    rd.write_status(state="running", runner_pid=os.getpid(), pgid=os.getpgid(0), host=hostname(),
                    boot_time=boot_time(), started=started)
    rd.touch_heartbeat()
    with open(rd.stdout_path, "ab", buffering=0) as log:
        try:
            child = subprocess.Popen(launch["argv"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, cwd=launch.get("cwd") or None)
        except OSError as e:
            rd.write_status(state="failed", error=f"could not start the trainer: {e}", ended=time.time(),
                            exit_code=None)
            return 1
        rd.write_status(trainer_pid=child.pid)
        while True:
            try:
                rc = child.wait(timeout=HEARTBEAT_EVERY)
                break
            except subprocess.TimeoutExpired:
                rd.touch_heartbeat()
    end = final_state(rd, rc, terminated)
    now = time.time()
    rd.write_status(**end, ended=now, duration=round(now - started, 3))
    rd.touch_heartbeat()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
