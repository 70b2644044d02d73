"""The import boundary: what the light side (TUI, light CLI commands) loads, and that it never loads the training
stack (torch, transformers, trl, peft, datasets, deepspeed, accelerate), nor matplotlib (only `workbench report`
draws with it).

Each entry point runs in its own child Python: the TUI (WorkbenchApp headless through App.run_test(): the runs
screen with its rows, `n` -> stage picker -> the editor on a new grpo recipe until it has validated, then the
monitor on a finished run with each of its tabs shown), and each light CLI command through
workbench.cli.main([...]). The child then lists the top-level names in sys.modules; the names a bare
`python -c pass` already has are removed. value = third-party + project top-level modules (stdlib not counted;
the full lists, stdlib included, go to ctx.work/imports.txt). A forbidden module makes the row fail: budget 0,
value = how many forbidden ones. The note gives the time of the entry module's import and of the whole scenario.
"""
from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.bench_startup import bench_env
from benchmarks.common import HEAVY, PY, ROOT, Context, Result
from benchmarks.runfixtures import make_runs

FORBIDDEN = (*HEAVY, "matplotlib")  # matplotlib: the report command's charts only

# The child: entry import timed, scenario run, then sys.modules roots written as JSON to argv[1].
CHILD_HEAD = """
import sys, time
t0 = time.perf_counter()
"""
CHILD_TAIL = """
t2 = time.perf_counter()
roots = sorted({m.split(".")[0] for m in list(sys.modules)})
import json
with open(sys.argv[1], "w") as f:
    json.dump({"roots": roots, "import_s": t1 - t0, "total_s": t2 - t0, "codes": codes,
               "stdlib": sorted(sys.stdlib_module_names), "notes": notes}, f)
"""

CLI_CHILD = CHILD_HEAD + """
import workbench.cli as cli
t1 = time.perf_counter()
notes = []
codes = [cli.main(sys.argv[2:])]
""" + CHILD_TAIL

TUI_CHILD = CHILD_HEAD + """
from workbench.tui.app import WorkbenchApp
t1 = time.perf_counter()
import asyncio
from pathlib import Path
notes, codes = [], []

async def until(pilot, cond, what, timeout=15.0):
    waited = 0.0
    while waited < timeout:
        try:
            if cond():
                return True
        except Exception:
            pass
        await pilot.pause(0.05)
        waited += 0.05
    notes.append(f"timed out waiting for {what}")
    return False

async def main(runs_dir, run_path):
    app = WorkbenchApp(Path(runs_dir))
    name = lambda: type(app.screen).__name__
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: name() == "RunsScreen" and app.screen.rows, "the runs screen's rows")
        await pilot.press("n")
        if await until(pilot, lambda: name() == "PickModal", "the stage picker"):
            app.screen.dismiss("grpo")
        await until(pilot, lambda: name() == "EditorScreen", "the editor")
        await until(pilot, lambda: "validating" not in str(app.screen.query_one("#problems").render()),
                    "the editor's validation")
        await until(pilot, lambda: bool(app.screen.fields), "the editor's trl schema")
        await pilot.pause(0.3)
        app.show_runs()
        await until(pilot, lambda: name() == "RunsScreen", "back to the runs screen")
        app.open_monitor(Path(run_path))
        await until(pilot, lambda: name() == "MonitorScreen" and app.screen.history.step > 0, "the monitor's metrics")
        for key in "23451":  # samples, log, recipe, system, charts
            await pilot.press(key)
            await pilot.pause(0.3)
        codes.append(0 if name() == "MonitorScreen" else 1)

asyncio.run(main(sys.argv[2], sys.argv[3]))
""" + CHILD_TAIL

CLI_COMMANDS = [  # (label, argv after --runs-dir DIR); `run`, `pipeline`, `resume`, `stop`, `prepare` start/touch runs
    ("validate", ["validate", "{recipes}/grpo-tiny.toml"]),
    ("ls", ["ls"]),
    ("show", ["show", "last"]),
    ("tail", ["tail", "last"]),
    ("new", ["new", "grpo"]),
    ("estimate", ["estimate", "{recipes}/grpo-tiny.toml"]),
    ("export", ["export", "{recipes}/grpo-tiny.toml", "--to", "shell"]),
    ("top", ["top", "--once"]),
]


def bare_roots(env: dict) -> set[str]:
    code = "import sys; print(' '.join(sorted({m.split('.')[0] for m in list(sys.modules)})))"
    out = subprocess.run([PY, "-c", code], env=env, capture_output=True, text=True, check=True, timeout=60)
    return set(out.stdout.split())


def run_child(code: str, args: list[str], env: dict, out: Path) -> dict:
    out.unlink(missing_ok=True)
    p = subprocess.run([PY, "-c", code, str(out), *args], env=env, cwd=ROOT, capture_output=True, text=True,
                       timeout=300, check=False)
    if p.returncode != 0 or not out.exists():
        raise RuntimeError(f"child exited {p.returncode}: {(p.stdout + p.stderr)[-1500:]}")
    return json.loads(out.read_text())


def run(ctx: Context) -> list[Result]:
    env = bench_env(ctx)
    runs_dir = ctx.work / "imports-runs"
    made = make_runs(runs_dir, 5, seed=3, rows=(40, 80))  # all completed; the last is a grpo run with samples
    finished = made[-1]
    bare = bare_roots(env)
    recipes = str(ROOT / "recipes")
    entries = [("TUI (runs, editor on new grpo, monitor)", TUI_CHILD, [str(runs_dir), str(finished)])]
    entries += [(f"CLI `{label}`", CLI_CHILD, ["--runs-dir", str(runs_dir), *(a.format(recipes=recipes) for a in argv)])
                for label, argv in CLI_COMMANDS]
    results, report = [], [f"# top-level modules imported beyond a bare `python -c pass` ({len(bare)} roots)\n"]

    def measure(i: int, entry: tuple) -> dict | Exception:
        try:
            return run_child(entry[1], entry[2], env, ctx.work / f"imports-child-{i}.json")
        except Exception as e:  # noqa: BLE001 - one broken entry still lets the others report
            return e

    # --quick (the suite's check): two children at a time, which halves its wall time; the module sets are the
    # same, the timings are not clean, and say so
    with ThreadPoolExecutor(max_workers=2 if ctx.quick else 1) as pool:
        outcomes = list(pool.map(measure, range(len(entries)), entries))
    for (label, code, args), got in zip(entries, outcomes):
        if isinstance(got, Exception):
            results.append(Result("imports", label, None, "modules", 0, f"{type(got).__name__}: {got}"[:300]))
            continue
        new = sorted(set(got["roots"]) - bare)
        stdlib = set(got["stdlib"])
        project = [m for m in new if m == "workbench"]
        third = [m for m in new if m not in stdlib and m != "workbench"]
        heavy = sorted(m for m in new if m in FORBIDDEN)
        timing = f"entry import {got['import_s'] * 1000:.0f} ms, whole scenario {got['total_s']:.2f} s" + \
            (" (two at a time: --quick)" if ctx.quick else "")
        extra = f"; exit codes {got['codes']}" if any(got["codes"]) else ""
        extra += ("; " + "; ".join(got["notes"])) if got["notes"] else ""
        if heavy:
            results.append(Result("imports", label, len(heavy), "forbidden", 0,
                                   f"FORBIDDEN: {', '.join(heavy)}; {timing}{extra}"))
        else:
            results.append(Result("imports", label, len(project) + len(third), "modules", None,
                                   f"forbidden: none; {', '.join(third) or 'no third-party'}; {timing}{extra}"))
        report.append(f"## {label}\nargs: {' '.join(args)}\n{timing}{extra}\n"
                      f"forbidden: {', '.join(heavy) or 'none'}\n"
                      f"project + third-party ({len(project) + len(third)}): {' '.join(project + third)}\n"
                      f"stdlib ({len([m for m in new if m in stdlib])}): {' '.join(m for m in new if m in stdlib)}\n")
    path = ctx.work / "imports.txt"
    path.write_text("\n".join(report), encoding="utf-8")
    if results:
        results[-1].note += f"; module lists: {path}"
    return results
