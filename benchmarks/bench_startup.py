"""Start-up latency as the user feels it: wall clock of whole processes.

1. The TUI in a real terminal: a private tmux server (`tmux -L wb-bench-PID`, no config, killed at the end), one
   80x24 pane, `capture-pane -p` polled every ~10 ms, the app quit with ctrl+q after each launch (the benchmark
   checks that no process carrying its runs dir is left). 20 finished runs.
   - first frame: launch -> the runs screen's footer key hints ("n New run") are on screen; the note adds when
     the table header and the newest run's row appear (launches where no key is sent);
   - time to interactive (TTI): launch -> the app has reacted to a key: `n` is sent as soon as the first frame
     is seen (re-sent every 100 ms while nothing happens) and TTI is when the stage picker's title ("New run:
     which stage?") is on screen (separate launches).
   Cold: right after `sync; echo 3 > /proc/sys/vm/drop_caches` (root only; otherwise the note says so and cold is
   just the first timed launch); warm: median of 5 launches of each kind.
2. `workbench ls` on 200 realistic run dirs (6 live, 10 failed, 4 killed; 150-400 trl-shaped metric rows each):
   a cold run (page cache dropped), then the median of 5 warm runs.
3. `workbench validate` on recipes/grpo-tiny.toml and sft-tiny.toml: one run to fill the schema cache, then the
   median of 5.
Every command is the venv's `workbench` console script (bin/workbench) when it exists, else `python -m workbench`.
Children run with Python's bytecode cache on (see bench_env): an installed workbench has its .pyc files.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path

from benchmarks.common import PY, ROOT, Context, Result, median, timed
from benchmarks.runfixtures import FakeRunner, make_runs

TUI_BUDGET, LS_BUDGET, VALIDATE_BUDGET = 0.5, 0.3, 0.5
TMUX = "/usr/bin/tmux" if Path("/usr/bin/tmux").exists() else "tmux"
FIRST_FRAME_TEXT = "n New run"             # the runs screen's footer key hints
TABLE_HEADER_TEXT = ("run", "state", "stage")  # the runs table's column header line
REACTION_TEXT = "New run: which stage?"    # the stage picker that `n` opens
ENV_KEYS = ("WORKBENCH_CACHE", "HF_HOME", "HF_HUB_OFFLINE", "TORCH_EXTENSIONS_DIR", "TOKENIZERS_PARALLELISM",
            "PYTHONPYCACHEPREFIX", "TERM")


def bench_env(ctx: Context, **extra) -> dict:
    """The children's environment, with Python's bytecode cache on (as for an installed workbench).

    This sandbox exports PYTHONDONTWRITEBYTECODE=1, and the repo's own modules have no __pycache__, so every
    launch would compile workbench/*.py again (~30-40 ms here). The cache goes to ctx.work/pycache
    (PYTHONPYCACHEPREFIX), so nothing is written into the source tree."""
    env = ctx.child_env(**extra)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(ctx.work / "pycache")
    return env


def workbench_cmd() -> tuple[list[str], str]:
    script = Path(PY).parent / "workbench"
    if script.exists():
        return [str(script)], f"{script.relative_to(ROOT) if script.is_relative_to(ROOT) else script}"
    return [PY, "-m", "workbench"], "python -m workbench"


def drop_page_cache() -> str:
    """Drop the page cache (root only). Returns '' on success, else why not."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return ""
    except OSError as e:
        return f"page cache not dropped ({e.strerror or e})"


# -- the TUI in tmux -------------------------------------------------------------------------------------------
class Tmux:
    """A private tmux server (own socket, no config), one detached 80x24 session; close() kills that server."""

    def __init__(self, env: dict, width: int = 80, height: int = 24):
        self.sock = f"wb-bench-{os.getpid()}"
        self.target = "bench"
        self.env = env
        self.tm("-f", "/dev/null", "new-session", "-d", "-s", self.target, "-x", str(width), "-y", str(height),
                "-c", str(ROOT), "sleep 100000")
        self.socket_path = self.tm("display-message", "-p", "#{socket_path}").strip()
        self.tm("set-option", "-g", "remain-on-exit", "on")  # a quit app leaves a dead pane we can see
        self.tm("set-option", "-g", "status", "off")         # the pane is the whole 80x24

    def tm(self, *args: str, check: bool = True) -> str:
        p = subprocess.run([TMUX, "-L", self.sock, *args], capture_output=True, text=True, env=self.env, timeout=30,
                           check=False)
        if check and p.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {p.stderr.strip()}")
        return p.stdout

    def screen(self) -> str:
        return self.tm("capture-pane", "-p", "-t", self.target)

    def respawn(self, command: str) -> None:
        self.tm("respawn-pane", "-k", "-t", self.target, "-c", str(ROOT), command)

    def pane(self) -> tuple[bool, int]:
        dead, pid = self.tm("display-message", "-p", "-t", self.target, "#{pane_dead} #{pane_pid}").split()
        return dead == "1", int(pid)

    def keys(self, *keys: str) -> None:
        self.tm("send-keys", "-t", self.target, *keys)

    def close(self) -> None:
        self.tm("kill-server", check=False)
        if self.socket_path:
            Path(self.socket_path).unlink(missing_ok=True)


def _has_table_header(screen: str) -> bool:
    return any(all(w in line.split() for w in TABLE_HEADER_TEXT) for line in screen.splitlines())


def launch_tui(tmux: Tmux, command: str, runs_dir: Path, press: bool, timeout: float = 30.0) -> dict:
    """One launch, quit with ctrl+q. Seconds from launch to: first frame, the table header, the newest run's row
    (press=False: no key is sent), or to the stage picker opened by `n` (press=True: TTI); and the quit latency."""
    marks: dict = {}
    probe_id = max(p.name for p in runs_dir.iterdir())  # the newest run: the table's first row
    t0 = time.perf_counter()
    tmux.respawn(command)
    _, pid = tmux.pane()
    last_key = None
    try:
        while time.perf_counter() - t0 < timeout:
            s = tmux.screen()
            now = time.perf_counter() - t0
            if "first_frame" not in marks and FIRST_FRAME_TEXT in s:
                marks["first_frame"] = now
            if "table" not in marks and _has_table_header(s):
                marks["table"] = now
            if "rows" not in marks and probe_id in s:
                marks["rows"] = now
            if press:
                if REACTION_TEXT in s:
                    marks["tti"] = now
                    break
                if "first_frame" in marks and (last_key is None or now - last_key > 0.1):
                    tmux.keys("n")
                    last_key = now
                    marks["keys"] = marks.get("keys", 0) + 1
            elif "rows" in marks and "first_frame" in marks:
                break
            time.sleep(0.01)
        else:
            raise RuntimeError(f"the TUI did not get there within {timeout:.0f} s; screen:\n{tmux.screen()}")
    finally:
        tq = time.perf_counter()
        tmux.keys("C-q")
        while time.perf_counter() - tq < 15:
            if tmux.pane()[0]:
                marks["quit"] = time.perf_counter() - tq
                break
            time.sleep(0.01)
    marks["pid"] = pid
    return marks


def leftovers(runs_dir: Path) -> list[int]:
    """Pids of processes still running with this runs dir on their command line (a TUI that did not exit)."""
    out = []
    needle = str(runs_dir).encode()
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == os.getpid():
            continue
        try:
            if needle in (p / "cmdline").read_bytes() and (p / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                out.append(int(p.name))
        except (OSError, IndexError):
            continue
    return out


def bench_tui(ctx: Context) -> list[Result]:
    runs_dir = ctx.work / "startup-tui-runs"
    make_runs(runs_dir, 20, seed=1, failed=2, killed=1)
    argv, how = workbench_cmd()
    env = bench_env(ctx, TERM="xterm-256color")
    env_prefix = " ".join(f"{k}={shlex.quote(env[k])}" for k in ENV_KEYS if k in env)
    command = (f"env -u PYTHONDONTWRITEBYTECODE {env_prefix} {shlex.join(argv)} "
               f"--runs-dir {shlex.quote(str(runs_dir))}")
    n_warm = 2 if ctx.quick else 5
    tmux = Tmux(env)
    problems: list[str] = []

    def one(press: bool, cold: bool = False) -> dict:
        note = drop_page_cache() if cold else ""
        m = launch_tui(tmux, command, runs_dir, press)
        m["cold_note"] = note
        left = leftovers(runs_dir)
        if left:
            problems.append(f"pids {left} still running after quit (killed)")
            for pid in left:  # only processes carrying our private runs dir: ours
                try:
                    os.kill(pid, 9)
                except OSError:
                    pass
        if "quit" not in m:
            problems.append("ctrl+q did not end the app within 15 s")
        return m

    try:
        one(press=False)  # untimed: fills the bytecode cache
        cold_view, cold_key = one(press=False, cold=True), one(press=True, cold=True)
        warm_view, warm_key = [], []
        for _ in range(n_warm):
            warm_view.append(one(press=False))
            warm_key.append(one(press=True))
    finally:
        tmux.close()

    def med(ms, k):
        return median([m[k] for m in ms if k in m])

    def series(ms, k):
        return ", ".join(f"{m[k]:.2f}" for m in ms if k in m)

    cold_how = cold_view["cold_note"] or "page cache dropped before each cold launch"
    tail = ("; " + "; ".join(sorted(set(problems)))) if problems else "; no process left after ctrl+q"
    return [
        Result("startup", "TUI first frame (cold)", cold_view.get("first_frame"), "s", TUI_BUDGET,
               f"tmux 80x24, {how}, 20 runs; {cold_how}; launch -> footer key hints on screen; table header "
               f"{cold_view.get('table', float('nan')):.2f} s, first run row {cold_view.get('rows', float('nan')):.2f} s"),
        Result("startup", "TUI time to interactive (cold)", cold_key.get("tti"), "s", TUI_BUDGET,
               f"launch -> stage picker on screen, `n` sent at first frame (re-sent every 100 ms; "
               f"{cold_key.get('keys', 0)} sent)"),
        Result("startup", "TUI first frame (warm)", med(warm_view, "first_frame"), "s", TUI_BUDGET,
               f"median of {len(warm_view)}: {series(warm_view, 'first_frame')}; table header "
               f"{med(warm_view, 'table'):.2f} s, first run row {med(warm_view, 'rows'):.2f} s (medians)"),
        Result("startup", "TUI time to interactive (warm)", med(warm_key, "tti"), "s", TUI_BUDGET,
               f"median of {len(warm_key)}: {series(warm_key, 'tti')}; ctrl+q -> process gone "
               f"{med(warm_view + warm_key, 'quit'):.2f} s{tail}"),
    ]


# -- CLI commands ----------------------------------------------------------------------------------------------
def bench_ls(ctx: Context) -> list[Result]:
    runs_dir = ctx.work / "startup-ls-runs"
    argv, how = workbench_cmd()
    n = 2 if ctx.quick else 5
    with FakeRunner() as runner:  # the live runs on this host point at it, so `ls` finds them alive
        t0 = time.perf_counter()
        make_runs(runs_dir, 200, seed=2, live_pid=runner.pid, live=6, failed=10, killed=4)
        made = time.perf_counter() - t0
        env = bench_env(ctx)
        timed([*argv, "--runs-dir", str(ctx.work / "startup-no-runs"), "ls"], env=env)  # fills the bytecode cache
        cmd = [*argv, "--runs-dir", str(runs_dir), "ls"]
        cold_note = drop_page_cache()
        cold, out = timed(cmd, env=env)
        lines = out.splitlines()
        warm = [timed(cmd, env=env)[0] for _ in range(n)]
        states = {}
        for line in lines[1:]:
            parts = line.split()
            if len(parts) > 1:
                states[parts[1]] = states.get(parts[1], 0) + 1
    size = sum(f.stat().st_size for f in runs_dir.rglob("*.jsonl")) / 1e6
    listed = ", ".join(f"{v} {k}" for k, v in sorted(states.items(), key=lambda kv: -kv[1]))
    return [
        Result("startup", "`workbench ls`, 200 runs (cold)", cold, "s", None,
               f"{cold_note or 'page cache dropped'}; listed {len(lines) - 1} runs ({listed})"),
        Result("startup", "`workbench ls`, 200 runs (warm)", median(warm), "s", LS_BUDGET,
               f"{how}; median of {n}: " + ", ".join(f"{x:.2f}" for x in warm)
               + f"; {size:.0f} MB of jsonl, 150-400 metric rows/run (made in {made:.1f} s)"),
    ]


def bench_validate(ctx: Context) -> list[Result]:
    argv, how = workbench_cmd()
    n = 2 if ctx.quick else 5
    env = bench_env(ctx)
    out = []
    for name in ("grpo-tiny.toml", "sft-tiny.toml"):
        cmd = [*argv, "validate", str(ROOT / "recipes" / name)]
        first, _ = timed(cmd, env=env)  # fills the trl schema cache if it is empty
        warm = [timed(cmd, env=env)[0] for _ in range(n)]
        out.append(Result("startup", f"`workbench validate {name}` (warm)", median(warm), "s", VALIDATE_BUDGET,
                          f"{how}; median of {n}: " + ", ".join(f"{x:.2f}" for x in warm)
                          + f"; first run {first:.2f} s (fills the schema cache when empty)"))
    return out


def run(ctx: Context) -> list[Result]:
    results: list[Result] = []
    for part in (bench_tui, bench_ls, bench_validate):
        try:
            results += part(ctx)
        except Exception as e:  # noqa: BLE001 - one broken part still lets the others report
            results.append(Result("startup", f"{part.__name__} failed", None, "", 0, f"{type(e).__name__}: {e}"[:300]))
    return results
