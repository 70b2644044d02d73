"""Idle cost of the system panel: CPU of the TUI sitting on the runs list (20 finished runs, 80x24, a real
terminal in a private tmux), with its system line sampling once a second and with the line's sampling switched
off, alternately, several windows each. Not a budgeted group of `python -m benchmarks` (the panel's budget is a
share of the runs list's own idle cost); run it by hand:

    python -m benchmarks.probe_system_idle [--seconds 20] [--rounds 3]

Prints the median CPU (% of one core) of each variant and their difference.
"""
from __future__ import annotations

import argparse
import shlex
import statistics
import time
from pathlib import Path

from benchmarks.bench_live import tui_pid
from benchmarks.bench_startup import ENV_KEYS, Tmux, bench_env
from benchmarks.common import PY, ROOT, Context, cpu_seconds
from benchmarks.runfixtures import make_runs

# The TUI with SystemLine's timer callback made a no-op: the same app, no sampling.
NO_SAMPLING = ("import sys; import workbench.tui.widgets.system as s; s.SystemLine._tick = lambda self: None; "
               "from workbench.cli import main; sys.exit(main(sys.argv[1:]))")
WITH_SAMPLING = "import sys; from workbench.cli import main; sys.exit(main(sys.argv[1:]))"


def measure(tmux: Tmux, code: str, runs_dir: Path, env: dict, seconds: float) -> float:
    prefix = " ".join(f"{k}={shlex.quote(env[k])}" for k in ENV_KEYS if k in env)
    tmux.respawn(f"env -u PYTHONDONTWRITEBYTECODE {prefix} {shlex.join([PY, '-c', code])} "
                 f"--runs-dir {shlex.quote(str(runs_dir))}")
    deadline = time.monotonic() + 20
    while "n New run" not in tmux.screen():
        if time.monotonic() > deadline:
            raise RuntimeError("the TUI did not start:\n" + tmux.screen())
        time.sleep(0.05)
    time.sleep(3.0)  # past the first refreshes and the first sample (psutil's import)
    pid = tui_pid(tmux.pane()[1])
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    c1, t1 = cpu_seconds(pid), time.monotonic()
    if c0 is None or c1 is None:
        raise RuntimeError("the TUI went away")
    return 100 * (c1 - c0) / (t1 - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    work = ROOT / ".cache" / "bench"
    ctx = Context(work=work, env=dict(__import__("os").environ))
    runs_dir = work / "idle-runs"
    make_runs(runs_dir, 20, seed=5, rows=(40, 80))
    env = bench_env(ctx, TERM="xterm-256color")
    tmux = Tmux(env, width=80, height=24)
    got: dict[str, list[float]] = {"with sampling": [], "without": []}
    try:
        for _ in range(args.rounds):  # interleaved, so a change in the machine's load hits both alike
            got["with sampling"].append(measure(tmux, WITH_SAMPLING, runs_dir, env, args.seconds))
            got["without"].append(measure(tmux, NO_SAMPLING, runs_dir, env, args.seconds))
    finally:
        tmux.close()
    med = {k: statistics.median(v) for k, v in got.items()}
    for k, v in got.items():
        print(f"{k:14} median {med[k]:.2f} % of a core  ({', '.join(f'{x:.2f}' for x in v)})")
    print(f"system line's cost: {med['with sampling'] - med['without']:+.2f} % of a core")


if __name__ == "__main__":
    main()
