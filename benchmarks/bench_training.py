"""Training overhead: `workbench run RECIPE` (foreground) against the same training written with plain trl.

For GRPO (recipes/grpo-tiny.toml) and SFT (recipes/sft-tiny.toml), with max_steps raised so that the run is long
enough for start-up costs to weigh realistically, runs interleaved pairs (workbench, plain, workbench, plain...):

  workbench   python -m workbench run RECIPE --runs-dir DIR --set train.max_steps=N   (CLI + validation + runner +
              training child + following until the run ends)
  plain       python benchmarks/plain_{grpo,sft}.py --model BUILTIN_DIR --data DATA --out DIR --max-steps N
              (no workbench code: transformers + datasets + trl, same model, data, rewards, hyperparameters)

Measured per run: wall seconds from process start to exit; the first logged training step (workbench: the "time"
field of metrics.jsonl's first step row; plain: the moment the first "{'loss'" line arrives on the child's stdout
pipe); the loop, from that first logged step to the end of training (workbench: the train_end row; plain: the
"{'train_runtime'" line); the median time between logged steps (the loop's steady speed). Budgets (issue #13):
workbench / plain <= 1.02 for the wall, the loop and the per-step speed, each the geometric mean of the pairs'
ratios (with its 95 % interval in the note). Both sides must finish (exit 0, workbench status "completed", every
step logged) or the benchmark raises. The two sides are seeded alike and must log the same losses (checked,
reported in the note).

This 2-core VM's speed drifts by +-15 % over tens of seconds (the same plain run's steps take 110 ms in one stretch
and 180 ms in the next), more than the 2 % the ratios are held to, so the benchmark also measures what workbench
adds directly, where that noise cannot hide it:
  beside      CPU seconds the CLI (following the run) and the runner use during the loop (/proc/PID/stat at the
              first step row and at train_end), as a share of the loop: an upper bound on what they take from the
              trainer's cores;
  callbacks   what RunLogger and StopControl (and for GRPO SampleLogger) add to each step's callback dispatch,
              timed in transformers' own CallbackHandler (best of 3 x 10,000 steps), as a share of plain trl's step.
--pairs N runs more pairs than the default 3.
"""
from __future__ import annotations

import ast
import json
import math
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
T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26, 10: 2.23, 11: 2.20,
       12: 2.18, 13: 2.16, 14: 2.14, 15: 2.13}  # Student's t, two-sided 95 %, by degrees of freedom (else ~2)
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
        self.loss_times: list[float] = []  # ... every "{'loss'" line
        self.train_end: float | None = None  # ... the "{'train_runtime'" line
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        for raw in self.proc.stdout:
            t = time.perf_counter() - self.t0
            line = raw.decode(errors="replace")
            self.lines.append((t, line))
            if line.startswith("{'loss'"):
                self.loss_times.append(t)
                if self.first_loss is None:
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


def _median_gap(times: list[float]) -> float:
    """The median time between consecutive logged steps: the loop's steady speed, unmoved by the few intervals a
    busy neighbour (or a checkpoint save) stretches."""
    gaps = [b - a for a, b in zip(times, times[1:])]
    return median(gaps) if gaps else float("nan")


def _paired_ratio(ws: list[float], ps: list[float]) -> tuple[float, str]:
    """The geometric mean of the pairs' ratios w/p and, in words, its 95 % interval (t distribution on the logs)."""
    logs = [math.log(w / p) for w, p in zip(ws, ps)]
    mean = sum(logs) / len(logs)
    if len(logs) < 2:
        return math.exp(mean), "one pair: no interval"
    sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / (len(logs) - 1))
    t = T95.get(len(logs) - 1, 2.0)
    half = t * sd / math.sqrt(len(logs))
    return math.exp(mean), f"95 % interval {math.exp(mean - half):.3f}-{math.exp(mean + half):.3f}"


def _delta(a: dict | None, b: dict | None) -> float | None:
    if not a or not b or any(v is None for v in (*a.values(), *b.values())):
        return None
    return sum(b[k] - a[k] for k in a)


def _kill_run(runs: Path) -> None:
    for status in runs.glob("*/status.json"):
        pgid = json.loads(status.read_text() or "{}").get("pgid")
        if pgid:
            try:
                os.killpg(int(pgid), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _cpu_seconds(pid: int | None) -> float | None:
    """utime + stime of a live process (/proc/PID/stat), None once it is gone."""
    if not pid:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _beside(cli_pid: int, status_path: Path) -> dict:
    """CPU seconds so far of the processes workbench runs beside its trainer: the CLI (following) and the runner."""
    runner = json.loads(status_path.read_text() or "{}").get("runner_pid") if status_path.is_file() else None
    return {"cli": _cpu_seconds(cli_pid), "runner": _cpu_seconds(runner)}


def run_workbench(ctx: Context, recipe: Path, steps: int, runs: Path) -> dict:
    argv = [PY, "-m", "workbench", "run", str(recipe), "--runs-dir", str(runs), "--set", f"train.max_steps={steps}"]
    child = Child(argv, ctx.child_env(), ROOT)
    metrics, seen, at_first, at_end = None, 0, None, None
    try:
        # Read metrics.jsonl every 0.25 s (the benchmark's own reading stays off the trainer's cores) to take the
        # CPU used beside the trainer when the first step row appears and again at train_end.
        deadline = time.perf_counter() + TIMEOUT
        while child.proc.poll() is None and at_end is None:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"workbench run logged no train_end in {TIMEOUT:.0f} s:\n{child.text()}")
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
                    if at_first is None and "event" not in row and "step" in row:
                        at_first = _beside(child.proc.pid, metrics.parent / "status.json")
                    elif row.get("event") == "train_end":
                        at_end = _beside(child.proc.pid, metrics.parent / "status.json")
            time.sleep(0.25)
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
        "beside": _delta(at_first, at_end),  # CPU seconds of CLI + runner from about step 1 to about train_end
        # phases, seconds after the CLI process started
        "created": status["created"] - t0w,          # CLI start-up + validation + run dir written
        "started": status["started"] - t0w,          # runner up
        "train_begin": events["train_begin"]["time"] - t0w,
        "train_end": events["train_end"]["time"] - t0w,
        "ended": status["ended"] - t0w,              # runner wrote the final state
        "interval": _median_gap([r["time"] for r in steps_rows]),
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
            "interval": _median_gap(child.loss_times), "losses": _fingerprint(logs)}


def callback_cost(work: Path, logging_steps: int, samples: bool = False, steps: int = 10000) -> float:
    """Seconds per training step that workbench's callbacks (RunLogger, StopControl) add to the Trainer's callback
    dispatch: transformers' CallbackHandler driven through a step's events (and on_log every logging_steps, with
    an SFT-sized log dict) with DefaultFlowCallback alone, then with workbench's two added; the best of 3 each.
    samples: also SampleLogger, reading a GRPO-sized generation batch (4 prompts x 4 completions) at each log."""
    from transformers import TrainingArguments
    from transformers.trainer_callback import CallbackHandler, DefaultFlowCallback, TrainerControl, TrainerState

    from workbench.core.rundir import RunDir
    from workbench.train.callbacks import RunLogger, SampleLogger, StopControl

    folder = work / "callbacks"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    args = TrainingArguments(output_dir=str(folder / "checkpoints"), logging_steps=logging_steps, save_steps=10 ** 9,
                             report_to="none", use_cpu=True, disable_tqdm=True)
    logs = {"loss": 0.1626, "grad_norm": 0.4, "learning_rate": 3e-4, "entropy": 1.2, "num_tokens": 123456.0,
            "mean_token_accuracy": 0.93, "epoch": 14.2}

    def per_step(callbacks, batch=None) -> float:
        best = float("inf")
        for _ in range(3):
            handler = CallbackHandler([DefaultFlowCallback(), *callbacks], None, None, None, None)
            state = TrainerState(max_steps=steps, logging_steps=logging_steps, save_steps=10 ** 9, eval_steps=10 ** 9)
            control = TrainerControl()
            if batch is not None:
                batch.state = state
            t0 = time.perf_counter()
            for step in range(1, steps + 1):
                control = handler.on_step_begin(args, state, control)
                control = handler.on_pre_optimizer_step(args, state, control)
                control = handler.on_optimizer_step(args, state, control)
                state.global_step, state.epoch = step, step / 20
                control = handler.on_step_end(args, state, control)
                if control.should_log:
                    control = handler.on_log(args, state, control, dict(logs))
                    control.should_log = False
            best = min(best, (time.perf_counter() - t0) / steps)
        return best

    class Batch:  # trl's trainer._logs: a new generation batch at every step
        state = None
        system = {"role": "system", "content": "Respond in the format <reasoning>...</reasoning><answer>...</answer>"}

        @property
        def _logs(self):
            step = self.state.global_step if self.state else 0
            prompts = [[self.system, {"role": "user", "content": f"What is {g} + {step % 10}?"}] for g in range(4)]
            return {"prompt": [p for p in prompts for _ in range(4)],
                    "completion": [f"<reasoning>{step} {i}</reasoning><answer>{i}</answer>" for i in range(16)],
                    "rewards": {"format": [1.0] * 16, "correctness": [2.0] * 16}, "advantages": [0.5] * 16}

    rd = RunDir(folder)
    bare = per_step([])
    added, batch = [RunLogger(rd, True), StopControl(rd)], None
    if samples:
        logger = SampleLogger(rd, True, [1.0, 1.0], 4)
        logger.trainer = batch = Batch()
        added.append(logger)
    return max(0.0, per_step(added, batch) - bare)


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
    pairs = ctx.pairs or (1 if ctx.quick else 3)
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
        # The loop, as the issue measures it: first logged step -> end of training (start-up and exit left out)
        w_loop = [r["train_end"] - r["first"] for r in wb]
        p_loop = [r["train_end"] - r["first"] for r in plain]
        wall_ratio, wall_ci = _paired_ratio([r["wall"] for r in wb], [r["wall"] for r in plain])
        loop_ratio, loop_ci = _paired_ratio(w_loop, p_loop)
        step_ratio, step_ci = _paired_ratio([r["interval"] for r in wb], [r["interval"] for r in plain])
        besides = [r["beside"] for r in wb if r["beside"] is not None]
        shares = [r["beside"] / (r["train_end"] - r["first"]) for r in wb if r["beside"] is not None]
        beside_share = median(shares) if shares else None  # None: every run ended between two readings
        cb = callback_cost(ctx.work, logging_steps, samples=stage == "grpo")
        cb_share = cb / (median([p["interval"] for p in plain]) / logging_steps)
        ms = {side: "/".join(f"{r['interval'] * 1000:.1f}" for r in runs)
              for side, runs in (("wb", wb), ("plain", plain))}
        results += [
            Result(BENCH, f"{tag}: workbench / plain trl wall", wall_ratio, "x", budget=1.02,
                   note=f"{pairs} interleaved pairs, geometric mean of their ratios, {wall_ci}; walls workbench "
                        f"{_fmt(r['wall'] for r in wb)} s, plain {_fmt(r['wall'] for r in plain)} s; same losses: "
                        f"{'yes' if same else 'NO'}; {phases}"),
            Result(BENCH, f"{tag}: start -> end of training, workbench / plain", ph["train_end"] / p_end, "x",
                   note="the same ratio without process exit (both sides pay ~1 s of garbage collection at exit "
                        "unless it is skipped; the workbench trainer skips it with gc.freeze())"),
            Result(BENCH, f"{tag}: loop (first logged step -> end of training), workbench / plain", loop_ratio, "x",
                   budget=1.02, note=f"geometric mean of the {pairs} pairs' ratios, {loop_ci}; loops workbench "
                                     f"{_fmt(w_loop)} s, plain {_fmt(p_loop)} s"),
            Result(BENCH, f"{tag}: CPU used beside the trainer during the loop (CLI following + runner)",
                   None if beside_share is None else beside_share * 100, "%", budget=2.0,
                   note=f"median share of the loop's wall time; CPU seconds per run {_fmt(besides)} (from "
                        f"/proc/PID/stat at the first step row and at train_end): an upper bound on what they "
                        f"can take from the trainer"),
            Result(BENCH, f"{tag}: workbench callbacks per step (RunLogger + StopControl"
                          + (" + SampleLogger)" if stage == "grpo" else ")"), cb_share * 100, "%",
                   budget=2.0, note=f"{cb * 1e6:.1f} us a step in transformers' CallbackHandler (best of 3 x 10000 "
                                    f"steps, on_log every {logging_steps}), against plain trl's median step"),
            Result(BENCH, f"{tag}: time per logged interval (median), workbench / plain", step_ratio, "x",
                   budget=1.02, note=f"geometric mean of the {pairs} pairs' ratios, {step_ci}; the steady loop speed "
                                     f"(a run's median interval, robust to the few a checkpoint or a neighbour "
                                     f"stretches): ms per {logging_steps} step(s) workbench {ms['wb']}, plain "
                                     f"{ms['plain']}"),
            Result(BENCH, f"{tag}: workbench run wall (median)", w_wall, "s", note=_fmt(r["wall"] for r in wb)),
            Result(BENCH, f"{tag}: plain trl wall (median)", p_wall, "s", note=_fmt(r["wall"] for r in plain)),
            Result(BENCH, f"{tag}: workbench first logged step", w_first, "s",
                   note=f"{_fmt(r['first'] for r in wb)} (metrics.jsonl time field)"),
            Result(BENCH, f"{tag}: plain trl first logged step", p_first, "s",
                   note=f"{_fmt(r['first'] for r in plain)} (first {{'loss' line on stdout)"),
        ]
    return results
