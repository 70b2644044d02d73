"""Run the benchmarks and print one table of numbers against their budgets.

    python -m benchmarks                 # all of them (make bench)
    python -m benchmarks startup bigrun  # some of them (imports, startup, bigrun, live, viewer, training)
    python -m benchmarks --quick         # fewer repetitions, imports two at a time: a smoke check, not numbers to quote
    python -m benchmarks training --pairs 8   # more interleaved training pairs than the default 3

Exit status 1 when a budget is not met. A full run's table also goes to benchmarks/results/latest.md (and .json);
a partial or --quick run's to .cache/bench/results/.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path

from benchmarks.common import ROOT, Context, Result, as_dict, machine

GROUPS = ["imports", "startup", "bigrun", "live", "viewer", "training"]


def table(results: list[Result]) -> str:
    lines = ["| benchmark | measured | value | budget | verdict | note |", "|---|---|---|---|---|---|"]
    for r in results:
        value = "n/a" if r.value is None else f"{r.value:.3g} {r.unit}".strip()
        budget = "" if r.budget is None else f"<= {r.budget:g} {r.unit}".strip()
        note = " ".join(r.note.split()).replace("|", "/")
        lines.append(f"| {r.bench} | {r.name} | {value} | {budget} | {r.verdict()} | {note} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    ap.add_argument("groups", nargs="*", help=f"which to run (default: all of {', '.join(GROUPS)})")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions, imports two at a time: a smoke check")
    ap.add_argument("--pairs", type=int, default=0, help="training: interleaved pairs (default 3, 1 with --quick)")
    ap.add_argument("--work", default=str(ROOT / ".cache" / "bench"), help="scratch dir (generated runs are kept)")
    args = ap.parse_args(argv)
    unknown = [g for g in args.groups if g not in GROUPS]
    if unknown:
        ap.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(GROUPS)}")
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    cache = ROOT / ".cache"
    env.setdefault("WORKBENCH_CACHE", str(cache / "workbench"))
    env.setdefault("HF_HOME", str(cache / "huggingface"))
    env.setdefault("TORCH_EXTENSIONS_DIR", str(cache / "torch_extensions"))
    env["HF_HUB_OFFLINE"] = "1"
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.update({k: env[k] for k in ("WORKBENCH_CACHE", "HF_HOME", "TORCH_EXTENSIONS_DIR", "HF_HUB_OFFLINE")})
    ctx = Context(work=work, quick=args.quick, env=env, pairs=args.pairs)

    results: list[Result] = []
    started = time.time()
    for group in args.groups or GROUPS:
        print(f"== {group}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            mod = importlib.import_module(f"benchmarks.bench_{group}")
            got = mod.run(ctx)
        except Exception as e:  # one broken benchmark still lets the others report
            traceback.print_exc()
            got = [Result(group, "benchmark failed", None, "", budget=0, note=f"{type(e).__name__}: {e}"[:200])]
        for r in got:
            print(f"   {r.name}: {r.value} {r.unit} {r.verdict()} {r.note}", file=sys.stderr, flush=True)
        results += got
        print(f"   ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)

    info = machine()
    head = (f"Machine: {info.get('cpu', '?')}, {info.get('cpus')} CPUs, {info.get('memory_gib', '?')} GiB, "
            f"Python {info['python']}, {info['platform']}; commit {info.get('commit', '?')}; "
            f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(started))}" + ("; --quick" if args.quick else ""))
    text = head + "\n\n" + table(results) + "\n"
    print(text)
    # A full run is the record (benchmarks/results/latest.*, committed, quoted in docs/performance.md); a partial
    # or quick run goes to the scratch dir.
    full = not args.quick and (not args.groups or set(args.groups) == set(GROUPS))
    out = ROOT / "benchmarks" / "results" if full else work / "results"
    name = "latest" if full else ("quick-" if args.quick else "") + "-".join(args.groups or GROUPS)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.md").write_text(text, encoding="utf-8")
    (out / f"{name}.json").write_text(json.dumps({"machine": info, "results": [as_dict(r) for r in results]},
                                                  indent=1), encoding="utf-8")
    print(f"(written to {out / name}.md)", file=sys.stderr)
    return 0 if all(r.ok is not False for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
