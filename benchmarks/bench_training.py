"""Training overhead: `workbench run RECIPE` (foreground) against the same training written with plain trl.

For GRPO (recipes/grpo-tiny.toml) and SFT (recipes/sft-tiny.toml), with max_steps raised so that the run is long
enough for start-up costs to weigh realistically, runs interleaved pairs (workbench, plain, workbench, plain...):

  workbench   python -m workbench run RECIPE --runs-dir DIR --set train.max_steps=N   (CLI + validation + runner +
              training child + following until the run ends)
  plain       python benchmarks/plain_{grpo,sft}.py --model BUILTIN_DIR --data DATA --out DIR --max-steps N
              (no workbench code: transformers + datasets + trl, same model, data, rewards, hyperparameters)

Measured per run: wall seconds from process start to exit, and seconds to the first logged training step
(workbench: the "time" field of metrics.jsonl's first step row, which is polled every 20 ms; plain: the moment
the first "{'loss'" line arrives on the child's stdout pipe). Budget: median(workbench wall) / median(plain wall)
<= 1.03. Both sides must finish (exit 0, workbench status "completed", every step logged) or the benchmark
raises. The two sides are seeded alike and must log the same losses (checked, reported in the note).
"""
from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import tomllib

from benchmarks.common import PY, ROOT, Context, Result, median

BENCH = "training"
POLL = 0.02
TIMEOUT = 300.0

# stage -> (recipe, plain script, max_steps normally, max_steps with --quick)
CASES = {
    "grpo": ("recipes/grpo-tiny.toml", "benchmarks/plain_grpo.py", 80, 40),
    "sft": ("recipes/sft-tiny.toml", "benchmarks/plain_sft.py", 300, 150),
}


class Child:
    """A child process with its stdout (and stderr) drained by a thread; each line kept with its arrival time."""

    def __init__(self, argv: list[str], env: dict, cwd: Path):
        self.lines: list[tuple[float, str]] = []
        self.t0_wall = time.time()
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.first_loss: float | None = None  # seconds after start when the first "{'loss'" line arrived
        self.train_end: float | None = None  # ... the "{'train_runtime'" line
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        for raw in self.proc.stdout:
            t = time.perf_counter() - self.t0
            line = raw.decode(errors="replace")
            self.lines.append((t, line))
            if self.first_loss is None and line.startswith("{'loss'"):
                self.first_loss = t
            elif self.train_end is None and line.startswith("{'train_runtime'"):
                self.train_end = t

    def wait(self) -> tuple[int, float]:
        rc = self.proc.wait(timeout=TIMEOUT)
        wall = time.perf_counter() - self.t0
        self.thread.join(timeout=10)
        return rc, wall

    def text(self, tail: int = 3000) -> str:
        return "".join(line for _, line in self.lines)[-tail:]

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{t:9.3f} {line}" for t, line in self.lines), encoding="utf-8")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _jsonl(path: Path) -> list[dict]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rows.append(json.loads(line))
    return rows


def _fingerprint(logs: list[dict]) -> list[tuple]:
    """What both sides must log alike: loss and (GRPO) the mean completion length of each logged step."""
    keys = ("loss", "completions/mean_length")
    return [tuple(float(d[k]) for k in keys if k in d) for d in logs]


def _alike(a: list[tuple], b: list[tuple]) -> bool:
    """Equal up to trl's printing (4 significant digits)."""
    return len(a) == len(b) and all(len(x) == len(y) and all(abs(u - v) <= 1e-3 * max(abs(u), abs(v)) + 1e-6
                                                              for u, v in zip(x, y)) for x, y in zip(a, b))


def _kill_run(runs: Path) -> None:
    for status in runs.glob("*/status.json"):
        pgid = json.loads(status.read_text() or "{}").get("pgid")
        if pgid:
            try:
                os.killpg(int(pgid), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def run_workbench(ctx: Context, recipe: Path, steps: int, runs: Path) -> dict:
    argv = [PY, "-m", "workbench", "run", str(recipe), "--runs-dir", str(runs), "--set", f"train.max_steps={steps}"]
    child = Child(argv, ctx.child_env(), ROOT)
    metrics, seen, observed = None, 0, None
    try:
        # Poll metrics.jsonl (every 20 ms) until the first step row appears, then just wait for the exit.
        deadline = time.perf_counter() + TIMEOUT
        while child.proc.poll() is None and observed is None:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"workbench run logged no step in {TIMEOUT:.0f} s:\n{child.text()}")
            if metrics is None:
                found = sorted(runs.glob("*/metrics.jsonl"))
                metrics = found[0] if found else None
            if metrics is not None:
                with open(metrics, "rb") as f:
                    f.seek(seen)
                    chunk = f.read()
                end = chunk.rfind(b"\n") + 1
                seen += end
                for line in chunk[:end].decode().splitlines():
                    row = json.loads(line)
                    if "event" not in row and "step" in row:
                        observed = time.perf_counter() - child.t0
                        break
            time.sleep(POLL)
        rc, wall = child.wait()
    finally:
        if child.proc.poll() is None:
            _kill_run(runs)  # the runner lives in its own session: killing the CLI leaves it running
        child.kill()
        child.save(runs / "cli-output.log")
    dirs = [p for p in runs.iterdir() if p.is_dir()]
    if rc != 0 or len(dirs) != 1:
        raise RuntimeError(f"workbench run exited {rc} ({len(dirs)} run dirs in {runs}):\n{child.text()}")
    rd = dirs[0]
    status = json.loads((rd / "status.json").read_text())
    if status.get("state") != "completed":
        raise RuntimeError(f"workbench run {rd} ended {status.get('state')}: {status.get('error')}\n"
                           + (rd / "stdout.log").read_text(errors="replace")[-3000:])
    rows = _jsonl(rd / "metrics.jsonl")
    steps_rows = [r for r in rows if "event" not in r and "loss" in r]
    events = {r["event"]: r for r in rows if "event" in r}
    if not steps_rows or steps_rows[-1]["step"] != steps or "train_end" not in events:
        raise RuntimeError(f"workbench run {rd} did not log all {steps} steps (last {steps_rows[-1:]})")
    if not (rd / "final" / "config.json").is_file():
        raise RuntimeError(f"workbench run {rd} saved no final model")
    t0w = child.t0_wall
    return {
        "wall": wall,
        "first": steps_rows[0]["time"] - t0w,  # the row's own time stamp (no polling delay)
        "observed": observed,
        # phases, seconds after the CLI process started
        "created": status["created"] - t0w,          # CLI start-up + validation + run dir written
        "started": status["started"] - t0w,          # runner up
        "train_begin": events["train_begin"]["time"] - t0w,
        "train_end": events["train_end"]["time"] - t0w,
        "ended": status["ended"] - t0w,              # runner wrote the final state
        "losses": _fingerprint(steps_rows),
    }


def run_plain(ctx: Context, script: str, model: Path, data: Path, steps: int, out: Path, logging_steps: int) -> dict:
    argv = [PY, str(ROOT / script), "--model", str(model), "--data", str(data), "--out", str(out),
            "--max-steps", str(steps)]
    child = Child(argv, ctx.child_env(PYTHONUNBUFFERED=1), ROOT)
    try:
        rc, wall = child.wait()
    finally:
        child.kill()
        child.save(out / "output.log")  # with arrival times
    if rc != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {rc}:\n{child.text()}")
    logs = [ast.literal_eval(line) for _, line in child.lines if line.startswith("{'loss'")]
    if len(logs) != steps // logging_steps or child.train_end is None:
        raise RuntimeError(f"plain run logged {len(logs)} steps, expected {steps // logging_steps}:\n{child.text()}")
    if not (out / "final" / "config.json").is_file():
        raise RuntimeError(f"plain run saved no final model in {out}")
    return {"wall": wall, "first": child.first_loss, "train_end": child.train_end,
            "losses": _fingerprint(logs)}


def ensure_model(ctx: Context, name: str = "tiny-lm") -> Path:
    """The folder of builtin:NAME, the recipe's model (built in a child, like the training child does, if missing)."""
    from workbench.core.models import builtin_dir

    folder = builtin_dir(name)
    if not (folder / "READY").exists():
        subprocess.run([PY, "-c", f"from workbench.train.builtin import ensure_builtin; ensure_builtin({name!r})"],
                       env=ctx.child_env(), cwd=ROOT, check=True, timeout=TIMEOUT)
    if not (folder / "READY").exists():
        raise RuntimeError(f"built-in model not found in {folder}")
    return folder


def _fmt(xs) -> str:
    return "/".join(f"{x:.2f}" for x in xs)


def run(ctx: Context) -> list[Result]:
    pairs = 1 if ctx.quick else 3
    base = ctx.work / "training" / time.strftime("%Y%m%d-%H%M%S")
    if base.parent.is_dir():  # keep only this invocation's runs (checkpoints add up to ~60 MB a time)
        for old in base.parent.iterdir():
            shutil.rmtree(old, ignore_errors=True)
    results: list[Result] = []
    for stage, (recipe_rel, script, steps_full, steps_quick) in CASES.items():
        steps = steps_quick if ctx.quick else steps_full
        recipe = ROOT / recipe_rel
        spec = tomllib.loads(recipe.read_text(encoding="utf-8"))
        model = ensure_model(ctx, spec["model"]["path"].removeprefix("builtin:"))  # plain trains the same model
        data = (recipe.parent / spec["data"]["path"]).resolve()
        logging_steps = int(spec["train"].get("logging_steps", 1))
        wb, plain = [], []
        for i in range(pairs):
            wb.append(run_workbench(ctx, recipe, steps, base / f"{stage}-wb-{i}"))
            plain.append(run_plain(ctx, script, model, data, steps, base / f"{stage}-plain-{i}", logging_steps))
        same = all(_alike(r["losses"], plain[0]["losses"]) for r in wb + plain)
        w_wall, p_wall = median([r["wall"] for r in wb]), median([r["wall"] for r in plain])
        w_first, p_first = median([r["first"] for r in wb]), median([r["first"] for r in plain])
        ph = {k: median([r[k] for r in wb]) for k in ("created", "started", "train_begin", "first", "train_end",
                                                      "ended", "wall")}
        p_end = median([r["train_end"] for r in plain])
        phases = (f"workbench medians after CLI start: run dir {ph['created']:.2f}, runner {ph['started']:.2f}, "
                  f"train_begin {ph['train_begin']:.2f}, step 1 {ph['first']:.2f}, train_end {ph['train_end']:.2f}, "
                  f"final state {ph['ended']:.2f}, exit {ph['wall']:.2f} s; plain: step 1 {p_first:.2f}, "
                  f"train end {p_end:.2f}, exit {p_wall:.2f} s")
        tag = f"{stage.upper()} {steps} steps"
        results += [
            Result(BENCH, f"{tag}: workbench / plain trl wall", w_wall / p_wall, "x", budget=1.03,
                   note=f"{pairs} interleaved pairs; walls workbench {_fmt(r['wall'] for r in wb)} s, plain "
                        f"{_fmt(r['wall'] for r in plain)} s; same losses: {'yes' if same else 'NO'}; {phases}"),
            Result(BENCH, f"{tag}: start -> end of training, workbench / plain", ph["train_end"] / p_end, "x",
                   note="the same ratio without process exit (both sides pay ~1 s of garbage collection at exit "
                        "unless it is skipped; the workbench trainer skips it with gc.freeze())"),
            Result(BENCH, f"{tag}: workbench run wall (median)", w_wall, "s", note=_fmt(r["wall"] for r in wb)),
            Result(BENCH, f"{tag}: plain trl wall (median)", p_wall, "s", note=_fmt(r["wall"] for r in plain)),
            Result(BENCH, f"{tag}: workbench first logged step", w_first, "s",
                   note=f"{_fmt(r['first'] for r in wb)} (metrics.jsonl time field; seen by 20 ms polling at "
                        f"{_fmt(r['observed'] for r in wb if r['observed'] is not None)})"),
            Result(BENCH, f"{tag}: plain trl first logged step", p_first, "s",
                   note=f"{_fmt(r['first'] for r in plain)} (first {{'loss' line on stdout)"),
        ]
    return results
