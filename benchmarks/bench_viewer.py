"""The TUI as a run viewer, measured the way W&B's terminal viewer (LEET 0.31) was on this machine (FINDINGS.md:
a finished 100,000-step run with 8 metrics in a 120x40 tmux: charts in 1.06 s, idle 1.2 % of a core; 1.9 % on a
live run).

1. Idle on a finished run: `workbench open RUN` (a finished GRPO run, 400 trl-shaped rows) in a private tmux
   server (120x40); once the charts are on screen and the first seconds have passed, CPU of the TUI process
   (user + system, /proc) over 30 s, as % of one core. Budget 0.5 %.
2. Idle on a live run: the same, watching a run that a stand-in trainer (benchmarks/live_writer.py, through the
   real supervisor and runner) logs one GRPO row a second into, with a batch of completions every second.
   Budget 2 %.
3. `workbench open RUN` of a finished run with 100,000 steps x 8 metrics (generated once into the scratch dir):
   launch -> every chart on screen has drawn up to step 100,000 (each chart's step axis ends at it). No saved
   view (the first open of the file), median of 3; and the reopen (saved view). Budget 1.06 s (W&B's viewer).
"""
from __future__ import annotations

import json
import random
import re
import shlex
import shutil
import sys
import time
from pathlib import Path

from benchmarks.bench_live import launch_writer, tui_pid
from benchmarks.bench_startup import ENV_KEYS, Tmux, bench_env, workbench_cmd
from benchmarks.common import Context, Result, cpu_seconds, median, peak_rss_mb
from benchmarks.runfixtures import make_run

SIZE = (120, 40)
IDLE_S = 30.0
IDLE_FINISHED_BUDGET, IDLE_LIVE_BUDGET, OPEN_BUDGET = 0.5, 2.0, 1.06
BIG_STEPS = 100_000
BIG_KEYS = ["loss", "grad_norm", "learning_rate", "reward", "reward_std", "kl", "entropy", "completions/mean_length"]
AXIS_RE = re.compile(r"└(\d+) +(?:(?:ema [\d.]+|raw) +)?(\d+)")  # a chart's step axis: first and last step drawn


def generate_big(run: Path, steps: int = BIG_STEPS) -> None:
    """A finished GRPO run dir with ``steps`` rows of the 8 BIG_KEYS (trl-shaped values), once."""
    from workbench.core.rundir import RunDir

    if (run / "generated.ok").exists():
        return
    run.mkdir(parents=True, exist_ok=True)
    rd = RunDir(run)
    rnd = random.Random(0)
    t0 = 1.76e9
    (run / "recipe.toml").write_text('[run]\nname = "big8"\nstage = "grpo"\n[model]\npath = "builtin:tiny-lm"\n'
                                     '[train]\nbeta = 0.04\n')
    (run / "launch.json").write_text(json.dumps({"argv": [sys.executable, "-m", "workbench.train", str(run)]}))
    rd.write_status(state="completed", stage="grpo", name="big8", model="builtin:tiny-lm", created=t0, started=t0,
                    ended=t0 + steps * 0.5, exit_code=0, runner_pid=None)
    with open(rd.metrics_path, "w") as f:
        f.write(json.dumps({"event": "train_begin", "step": 0, "max_steps": steps, "time": t0}) + "\n")
        buf = []
        for s in range(1, steps + 1):
            p = s / steps
            row = {"step": s, "time": t0 + s * 0.5, "epoch": p}
            row.update(zip(BIG_KEYS, (rnd.gauss(0, 0.02), abs(rnd.gauss(3, 1)), 1e-4 * (1 - p),
                                      -0.8 + 3 * p + rnd.gauss(0, 0.15), abs(rnd.gauss(0.5, 0.1)),
                                      0.002 * s ** 0.5, 6 - 3 * p, 28.5 - 10 * p + rnd.gauss(0, 1))))
            buf.append(json.dumps(row))
            if len(buf) == 10_000:
                f.write("\n".join(buf) + "\n")
                buf = []
        f.write("\n".join(buf) + ("\n" if buf else ""))
        f.write(json.dumps({"event": "train_end", "step": steps, "time": t0 + steps * 0.5}) + "\n")
    (run / "generated.ok").write_text("")


class Viewer:
    """`workbench open RUN` in a private tmux server; the TUI's pid once it is up."""

    def __init__(self, ctx: Context, runs_dir: Path):
        argv, self.how = workbench_cmd()
        env = bench_env(ctx, TERM="xterm-256color")
        self.prefix = (f"env -u PYTHONDONTWRITEBYTECODE {' '.join(f'{k}={shlex.quote(env[k])}' for k in ENV_KEYS if k in env)} "
                       f"{shlex.join(argv)} --runs-dir {shlex.quote(str(runs_dir))}")
        self.tmux = Tmux(env, width=SIZE[0], height=SIZE[1])
        self.cpu: float | None = None

    def open(self, run: str) -> float:
        """Launch; returns the wall time at launch (perf_counter)."""
        t0 = time.perf_counter()
        self.tmux.respawn(f"{self.prefix} open {shlex.quote(run)}")
        return t0

    def wait_charts(self, last_step: int, t0: float, timeout: float = 60.0) -> float:
        """Seconds from t0 until at least 2 charts are on screen and every chart's step axis ends at last_step;
        ``self.cpu``: the CPU seconds the TUI process had used by then (what a loaded machine does not change)."""
        pid = None
        while True:
            screen = self.tmux.screen()
            ends = [int(b) for _, b in AXIS_RE.findall(screen)]
            if pid is None:
                try:
                    pid = self.pid()
                except OSError:
                    pass
            if len(ends) >= 2 and all(e >= last_step for e in ends):
                self.cpu = cpu_seconds(pid) if pid else None
                return time.perf_counter() - t0
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"the charts did not reach step {last_step}:\n{screen}")
            time.sleep(0.01)

    def pid(self) -> int:
        return tui_pid(self.tmux.pane()[1])

    def quit(self) -> None:
        self.tmux.keys("C-q")
        for _ in range(300):
            if self.tmux.pane()[0]:
                return
            time.sleep(0.02)

    def close(self) -> None:
        self.tmux.close()


def idle_cpu(pid: int, seconds: float) -> float:
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    c1, t1 = cpu_seconds(pid), time.monotonic()
    if c0 is None or c1 is None:
        raise RuntimeError("the TUI process went away")
    return 100 * (c1 - c0) / (t1 - t0)


def load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def bench_idle_finished(ctx: Context) -> list[Result]:
    runs_dir = ctx.work / "viewer-runs"
    shutil.rmtree(runs_dir, ignore_errors=True)
    d = make_run(runs_dir, "20260101-000000-grpo-done", stage="grpo", state="completed", created=time.time() - 3600,
                 rows=400, max_steps=400, rng=random.Random(3))
    seconds = 10.0 if ctx.quick else IDLE_S
    v = Viewer(ctx, runs_dir)
    try:
        v.wait_charts(400, v.open(d.name))
        pid = v.pid()
        time.sleep(3.0)  # settle: the first reads and draws are not the idle state
        before = load()
        cpu = idle_cpu(pid, seconds)
        v.quit()
    finally:
        v.close()
    return [Result("viewer", "idle, finished run (monitor, charts tab)", cpu, "%", IDLE_FINISHED_BUDGET,
                   f"% of one core over {seconds:g} s, {SIZE[0]}x{SIZE[1]} tmux, 400-step GRPO run, {v.how}; "
                   f"load {before}; W&B's viewer: 1.2 %")]


def bench_idle_live(ctx: Context) -> list[Result]:
    runs_dir = ctx.work / "viewer-live-runs"
    shutil.rmtree(runs_dir, ignore_errors=True)
    runs_dir.mkdir(parents=True)
    seconds = 10.0 if ctx.quick else IDLE_S
    launched = launch_writer(runs_dir, 1.0, seconds + 30)
    v = Viewer(ctx, runs_dir)
    try:
        rd = launched.run
        deadline = time.monotonic() + 30
        while not rd.metrics_path.exists() or rd.metrics_path.stat().st_size < 200:
            if time.monotonic() > deadline:
                raise RuntimeError("the stand-in trainer wrote nothing")
            time.sleep(0.05)
        t0 = v.open(rd.id)
        while "RUNNING" not in v.tmux.screen():
            if time.perf_counter() - t0 > 30:
                raise RuntimeError("the monitor did not open:\n" + v.tmux.screen())
            time.sleep(0.05)
        pid = v.pid()
        time.sleep(3.0)
        before = load()
        cpu = idle_cpu(pid, seconds)
        v.quit()
    finally:
        v.close()
        from workbench.core import supervisor

        supervisor.stop(launched.run, grace=5.0, term_grace=2.0)
        launched.process.wait(timeout=30)
    return [Result("viewer", "idle, live run logging 1 row/s (monitor, charts tab)", cpu, "%", IDLE_LIVE_BUDGET,
                   f"% of one core over {seconds:g} s, {SIZE[0]}x{SIZE[1]} tmux; 22 GRPO keys a row, 16 completions "
                   f"a second; load {before}; W&B's viewer: 1.9 %")]


def bench_open(ctx: Context) -> list[Result]:
    from workbench.core.metrics import _view_file

    runs_dir = ctx.work / "viewer-big"
    run = runs_dir / "20260101-000000-big8"
    t = time.perf_counter()
    generate_big(run)
    if time.perf_counter() - t > 1:
        print(f"   generated {BIG_STEPS:,} steps x {len(BIG_KEYS)} metrics in {time.perf_counter() - t:.0f} s",
              file=sys.stderr)
    size = (run / "metrics.jsonl").stat().st_size / 1e6
    n = 2 if ctx.quick else 3
    first, again, peak, cpu = [], [], [], []
    v = Viewer(ctx, runs_dir)
    try:
        for fresh in [True] * n + [False] * n:
            if fresh:
                _view_file(run / "metrics.jsonl").unlink(missing_ok=True)
            got = v.wait_charts(BIG_STEPS, v.open(run.name))
            (first if fresh else again).append(got)
            if fresh and v.cpu is not None:
                cpu.append(v.cpu)
            if fresh:
                while "reading metrics" in v.tmux.screen():  # the exact fold done (and the view saved)
                    time.sleep(0.05)
                peak.append(peak_rss_mb(v.pid()) or 0.0)
            v.quit()
    finally:
        v.close()

    def series(xs):
        return ", ".join(f"{x:.2f}" for x in xs)

    return [
        Result("viewer", f"`workbench open`, {BIG_STEPS:,} steps x {len(BIG_KEYS)} metrics: charts drawn",
               median(first), "s", OPEN_BUDGET,
               f"launch -> every chart's axis at step {BIG_STEPS:,}, {SIZE[0]}x{SIZE[1]} tmux, {size:.0f} MB of "
               f"metrics, no saved view; median of {n}: {series(first)}; CPU time of the TUI process by then "
               f"{median(cpu):.2f} s (median); peak memory {max(peak):.0f} MB; load {load()}; W&B's viewer: "
               f"1.06 s, 172 MB"),
        Result("viewer", "same, reopened (saved view)", median(again), "s", OPEN_BUDGET, f"median of {n}: {series(again)}"),
    ]


def run(ctx: Context) -> list[Result]:
    results: list[Result] = []
    for part in (bench_idle_finished, bench_idle_live, bench_open):
        try:
            results += part(ctx)
        except Exception as e:  # noqa: BLE001 - one broken part still lets the others report
            results.append(Result("viewer", f"{part.__name__} failed", None, "", 0, f"{type(e).__name__}: {e}"[:300]))
    return results


if __name__ == "__main__":
    from benchmarks.__main__ import main

    sys.exit(main(["viewer", *sys.argv[1:]]))
