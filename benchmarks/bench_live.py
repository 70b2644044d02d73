"""Live cost: the TUI watching a run that logs 20 metric rows a second for 60 s, in a real terminal.

A stand-in trainer (benchmarks/live_writer.py: 22 GRPO keys per row, 16 completions a second, a stdout line per
row) is started through the real supervisor and runner. The TUI runs in a private tmux server (120x36), opens
that run's monitor (Enter on the runs list) and stays on the charts tab. Measured:
  - CPU of the TUI process (user + system, /proc) over the logging window, as % of one core;
  - latency write -> screen, for every row written in the window: from the time the writer wrote row N to the
    first screen capture (capture-pane every 20 ms) that shows step N or later, (a) in the state line (step,
    headline metrics: "N/1200") and (b) in every chart (the right end of each chart's step axis).
"""
from __future__ import annotations

import json
import re
import shlex
import shutil
import sys
import time

from benchmarks.bench_startup import ENV_KEYS, Tmux, bench_env, workbench_cmd
from benchmarks.common import PY, Context, Result, cpu_seconds, median

RATE, SECONDS = 20.0, 60.0
STEP_RE = re.compile(r"\] (\d+)/(\d+) ")
AXIS_RE = re.compile(r"└(\d+) +(?:(?:ema [\d.]+|raw) +)?(\d+)")  # a chart's step axis: first and last step drawn


def launch_writer(runs_dir, rate: float, seconds: float):
    from workbench.core import supervisor
    from workbench.core.launch import LaunchPlan
    from workbench.core.paths import ASSETS_DIR
    from workbench.core.recipe import Recipe

    recipe = Recipe.parse(f'[run]\nname = "live"\nstage = "grpo"\n\n[model]\npath = "builtin:tiny-lm"\n\n'
                          f'[data]\npath = "{ASSETS_DIR / "data" / "arith-prompts.jsonl"}"\n\n'
                          '[rewards]\nfuncs = ["format", "correctness"]\n\n[train]\nnum_generations = 4\n')
    original = supervisor.launch_plan
    supervisor.launch_plan = lambda recipe, run_dir: LaunchPlan(
        [PY, "-m", "benchmarks.live_writer", str(run_dir), str(rate), str(seconds)],
        {"WORKBENCH_RUN_DIR": str(run_dir)})
    try:
        return supervisor.launch(recipe, runs_dir)
    finally:
        supervisor.launch_plan = original


def tui_pid(pane_pid: int) -> int:
    """The workbench process in the pane (the pane's command may be a shell or `env` that exec'd it)."""
    from pathlib import Path

    pid = pane_pid
    for _ in range(5):
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"workbench" in cmd and b"--runs-dir" in cmd and not cmd.startswith(b"env"):
            return pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if not children:
            return pid
        pid = int(children[0])
    return pid


def run(ctx: Context) -> list[Result]:
    seconds = 20.0 if ctx.quick else SECONDS
    runs_dir = ctx.work / "live-runs"
    shutil.rmtree(runs_dir, ignore_errors=True)
    runs_dir.mkdir(parents=True)
    argv, _ = workbench_cmd()
    env = bench_env(ctx, TERM="xterm-256color")
    env_prefix = " ".join(f"{k}={shlex.quote(env[k])}" for k in ENV_KEYS if k in env)
    tmux = Tmux(env, width=120, height=36)
    launched = None
    try:
        tmux.respawn(f"env -u PYTHONDONTWRITEBYTECODE {env_prefix} {shlex.join(argv)} "
                     f"--runs-dir {shlex.quote(str(runs_dir))}")
        deadline = time.monotonic() + 20
        while "n New run" not in tmux.screen():
            if time.monotonic() > deadline:
                raise RuntimeError("the TUI did not start:\n" + tmux.screen())
            time.sleep(0.05)
        launched = launch_writer(runs_dir, RATE, seconds + 8)  # runs past the window on both ends
        rd = launched.run
        while not rd.metrics_path.exists() or rd.metrics_path.stat().st_size == 0:
            time.sleep(0.05)
        deadline = time.monotonic() + 20
        while "RUNNING" not in tmux.screen() or not STEP_RE.search(tmux.screen()):
            if time.monotonic() > deadline:
                raise RuntimeError("the monitor did not open:\n" + tmux.screen())
            if "live" in tmux.screen() and "RUNNING" not in tmux.screen():
                tmux.keys("Enter")
            time.sleep(0.3)
        pid = tui_pid(tmux.pane()[1])
        time.sleep(2.0)  # settle: the monitor's first reads and draws are not the steady state
        seen: list[tuple[float, int, int]] = []  # (time, step in the state line, lowest last step of the charts)
        c0, t0 = cpu_seconds(pid), time.monotonic()
        w0 = time.time()
        while time.monotonic() - t0 < seconds:
            screen = tmux.screen()
            m = STEP_RE.search(screen)
            axes = [int(b) for _, b in AXIS_RE.findall(screen)]
            if m:
                seen.append((time.time(), int(m.group(1)), min(axes) if len(axes) >= 4 else -1))
            time.sleep(0.02)
        c1, t1 = cpu_seconds(pid), time.monotonic()
        if c0 is None or c1 is None:
            raise RuntimeError("the TUI process went away")
        cpu = 100 * (c1 - c0) / (t1 - t0)
    finally:
        tmux.close()
        if launched is not None:
            from workbench.core import supervisor

            supervisor.stop(launched.run, grace=5.0, term_grace=2.0)
            launched.process.wait(timeout=30)
    written = {}
    for line in launched.run.metrics_path.read_text().splitlines():
        row = json.loads(line)
        if "event" not in row:
            written[row["step"]] = row["time"]
    w1 = seen[-1][0] - 1.5  # rows written near the end may not have had their chance to show yet
    state_lat, chart_lat = [], []
    for step, t in written.items():
        if w0 <= t <= w1:
            state_lat.append(next((ts for ts, s, _ in seen if s >= step), seen[-1][0]) - t)
            chart_lat.append(next((ts for ts, _, c in seen if c >= step), seen[-1][0]) - t)
    if not state_lat:
        raise RuntimeError("no step was seen on screen")
    state_lat.sort()
    chart_lat.sort()

    def p95(xs):
        return xs[int(0.95 * (len(xs) - 1))]

    b = "live"
    return [
        Result(b, f"TUI CPU watching {RATE:g} rows/s for {seconds:g} s", cpu, "%", 3.0,
               f"% of one core, pid {pid}, monitor charts tab, 120x36"),
        Result(b, "latency write -> state line (p95)", p95(state_lat), "s", 1.0,
               f"median {median(state_lat):.2f} s, max {state_lat[-1]:.2f} s over {len(state_lat)} rows; "
               f"the state line shows the step and headline metrics, every 0.4 s poll"),
        Result(b, "latency write -> charts (p95)", p95(chart_lat), "s", 1.0,
               f"median {median(chart_lat):.2f} s, max {chart_lat[-1]:.2f} s; charts redraw at most every "
               f"0.7 s, and less often (up to 3 s) while a redraw costs more than 1.5 % of a core"),
    ]


if __name__ == "__main__":
    from benchmarks.__main__ import main

    sys.exit(main(["live", *sys.argv[1:]]))
