"""The headless CLI, twin of the TUI. Light: no torch/transformers/trl/peft/datasets import (the training child
and the one-time trl schema extraction run in separate processes).

  workbench                      open the TUI (the runs list)
  workbench edit RECIPE | workbench RECIPE.toml   open the TUI's editor on a recipe file
  workbench open RUN             open the TUI on a run's monitor
  workbench --version
  workbench run RECIPE [--set section.key=value ...] [--detach]
  workbench validate RECIPE
  workbench ls | show RUN | tail RUN | stop RUN | resume RUN | start RUN | rm RUN...
  workbench compare RUN RUN [RUN ...]   final values, evals and the recipe diff of runs side by side
  workbench new STAGE [-o FILE]
  workbench pipeline FOLDER [--detach]   a folder of recipes as one detached pipeline (run:previous chains them)
  workbench pipeline-tail PIPE | pipeline-stop PIPE | pipeline-resume PIPE
  workbench run RECIPE --queue;  workbench queue [move RUN up|down|top|bottom | cancel RUN | start-now RUN | resume]
  workbench estimate RECIPE | --params N --gpus G --zero Z [--offload optimizer|params]
  workbench export RECIPE --to shell|accelerate|deepspeed|sbatch|trl;  workbench prepare RECIPE
  workbench report RUN [RUN ...] [-o DIR] [--embed]   an HTML page + PNG charts of runs, to send to a colleague
  workbench eval TARGET --data FILE [--k N] [--baseline MODEL]   held-out accuracy, pass@k, maj@k of a model
  workbench top [--once]         CPU, RAM, disk, each GPU, and the GPU memory of each live run, refreshed
  workbench serve [--port N] [--host 127.0.0.1]   the TUI in a browser (needs the extra workbench[serve])

Exit codes: 0 ok, 1 the run failed (or was stopped/killed), 2 bad input. Runs live in --runs-dir, $WORKBENCH_RUNS,
or ./runs.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from workbench.core import paths, summary
from workbench.core.problems import BadInput, Problem, errors

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
ALLOW_CODE_HELP = ("run the recipe's Python code: reward files, and the model's own code when trust_remote_code is "
                   "set (asked once per file content / model; what runs is the approved copy)")


def _out(text: str = "") -> None:
    print(text, flush=True)


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _report(problems: list[Problem]) -> None:
    for p in problems:
        _err(p.format())


# -- commands --------------------------------------------------------------------------------------------------
def load_valid_recipe(path: str, overrides: list[str], runs_dir: Path, allow_code: bool | None = None):
    from workbench.core.recipe import Recipe
    from workbench.core.validate import validate_recipe

    recipe = Recipe.load(path)
    recipe.apply_overrides(overrides or [])
    problems = validate_recipe(recipe, runs_dir)
    if errors(problems):
        raise BadInput(problems)
    _report(problems)  # warnings only
    if allow_code is not None:
        consent_to_code(recipe, allow_code, runs_dir)
    return recipe


def consent_to_code(recipe, allow_code: bool, runs_dir: Path | None = None) -> None:
    """A recipe that runs Python code (reward files; a model's own code with trust_remote_code) needs --allow-code
    the first time: per file content, per model reference (a folder: per content of its .py files)."""
    from workbench.core import trust

    pending = trust.unapproved(recipe, runs_dir)
    if pending and not allow_code:
        raise BadInput([Problem(str(i.path or i.label), i.key, i.ask, "review the code, then run again with "
                                "--allow-code (remembered until the code changes)") for i in pending])
    if pending:
        trust.approve(pending)


def cmd_validate(args) -> int:
    from workbench.core.recipe import Recipe
    from workbench.core.validate import validate_recipe

    recipe = Recipe.load(args.recipe)
    recipe.apply_overrides(args.set or [])
    problems = validate_recipe(recipe, paths.runs_dir(args.runs_dir))
    _report(problems)
    n = len(errors(problems))
    if n:
        _err(f"{n} problem{'s' if n > 1 else ''} in {args.recipe}")
        return EXIT_BAD_INPUT
    _out(f"{args.recipe}: ok (stage {recipe.stage}, model {recipe.get('model.path')}, data {recipe.get('data.path')})")
    return EXIT_OK


def cmd_run(args) -> int:
    from workbench.core import supervisor

    runs_dir = paths.runs_dir(args.runs_dir)
    if args.stop_on_error is not None and not args.queue:
        raise BadInput(Problem("", "--stop-on-error", "--stop-on-error / --keep-going are queue settings",
                               "add --queue, or set them with: workbench queue --stop-on-error"))
    recipe = load_valid_recipe(args.recipe, args.set, runs_dir, allow_code=args.allow_code)
    if args.queue:
        from workbench.cli_queue import run_queued

        return run_queued(recipe, runs_dir, args)
    launched = supervisor.launch(recipe, runs_dir)
    rd = launched.run
    _out(f"run {rd.id} started: {rd.path}")
    if args.detach:
        _out(f"follow it with: workbench tail {rd.id}" + _runs_flag(args))
        return EXIT_OK
    return follow(rd, args, launched.process)


def _start_of_last_lines(path, n: int, block: int = 65536) -> int:
    """Byte offset where the last n complete lines of a file begin (0 for a short file)."""
    try:
        with open(path, "rb") as f:
            end = f.seek(0, os.SEEK_END)
            pos, found = end, 0
            while pos > 0:
                start = max(0, pos - block)
                f.seek(start)
                chunk = f.read(pos - start)
                if pos == end and chunk.endswith(b"\n"):
                    chunk = chunk[:-1]  # the final newline ends the last line; it does not start one
                i = len(chunk)
                while (i := chunk.rfind(b"\n", 0, i)) >= 0:
                    found += 1
                    if found == n:
                        return start + i + 1
                pos = start
    except OSError:
        pass
    return 0


def _emit(text: str, output: str | None, overwrite: bool) -> int:
    """Generated text to a file (atomically; an existing one only with overwrite) or to stdout."""
    if not output:
        sys.stdout.write(text)
        return EXIT_OK
    from workbench.core.atomic import write_text_atomic

    if Path(output).exists() and not overwrite:
        raise BadInput(Problem(output, "", "already exists", "pass --force to overwrite, or another name"))
    write_text_atomic(output, text)
    _out(f"wrote {output}")
    return EXIT_OK


def _runs_flag(args) -> str:
    return f" --runs-dir {args.runs_dir}" if args.runs_dir else ""


FOLLOW_EVERY_TTY, FOLLOW_EVERY = 0.25, 1.0  # seconds between reads of a followed run (terminal / not)


def follow(rd, args, process=None, print_rows: bool = False, last_lines: int = 0) -> int:
    """Show progress until the run ends. Ctrl-C (or SIGHUP) stops following, never the run.
    With print_rows and last_lines > 0, rows are printed from the last ``last_lines`` lines of metrics.jsonl."""
    from workbench.core import supervisor
    from workbench.core.exitwait import exit_event
    from workbench.core.metrics import READ_CHUNK, JsonlTail, MetricsHistory

    tail, hist = JsonlTail(rd.metrics_path), MetricsHistory()
    if print_rows and last_lines > 0:
        tail.offset = _start_of_last_lines(rd.metrics_path, last_lines)
    tty = sys.stdout.isatty()
    # A live progress line on a terminal; a line every few seconds otherwise, read once a second: the trainer
    # shares the machine with this loop. The runner's exit (right after the final state) ends the wait at once.
    every = FOLLOW_EVERY_TTY if tty else FOLLOW_EVERY
    exited = exit_event(process) if process is not None else None
    last_line, last_print = "", 0.0
    try:
        while True:
            rows = tail.read_new(max_bytes=READ_CHUNK)  # a big file: a chunk at a time, never all of it at once
            hist.add(rows)
            if print_rows:
                for row in rows:
                    _out(_row_line(row))
            st = supervisor.status(rd)
            if process is not None:
                process.poll()  # reap the runner when it exits
            line = _progress_line(hist, st)
            now = time.monotonic()
            if not print_rows and line != last_line and (tty or now - last_print > 2 or
                                                         st.get("state") not in ("waiting", "queued", "running")):
                if tty:
                    sys.stdout.write("\r\x1b[2K" + line)
                    sys.stdout.flush()
                else:
                    _out(line)
                last_line, last_print = line, now
            if tail.behind:
                continue
            if st.get("state") not in ("waiting", "queued", "running"):  # a waiting run: until it has run
                break
            if exited is not None and not exited.is_set():  # the runner exits right after the final state
                exited.wait(every)
            else:
                time.sleep(every)
    except KeyboardInterrupt:
        _out(f"\nstopped following; the run goes on. Re-attach: workbench tail {rd.id}{_runs_flag(args)}")
        return EXIT_OK
    if tty:
        _out()
    while rows := tail.read_new(max_bytes=READ_CHUNK):
        hist.add(rows)
    return _final_report(rd, st)


def _final_report(rd, st: dict) -> int:
    state = st.get("state")
    _out(f"run {rd.id} {state} after {summary.fmt_duration(summary.duration_of(st))}"
         + (f" (step {st.get('step')})" if st.get("step") else ""))
    if st.get("error"):
        _err(f"error: {st['error']}")
        _err(f"full log: {rd.stdout_path}")
    if st.get("hint"):
        _err(f"hint: {st['hint']}")
    return EXIT_OK if state == "completed" else EXIT_FAILED


def _progress_line(hist, st: dict) -> str:
    parts = [st.get("display_state") or "?"]
    if st.get("state") == "running" and hist.max_steps is None:
        parts.append(st.get("phase") or "starting")
    else:
        parts.append(summary.progress_bar(hist.step, hist.max_steps))
        eta = hist.eta_seconds()
        if eta is not None and st.get("state") == "running":
            parts.append(f"ETA {summary.fmt_duration(eta)}")
    for key in summary.headline_keys(st.get("stage")):
        if key in hist.latest:
            parts.append(f"{key} {summary.fmt_num(hist.latest[key])}")
    return "  ".join(parts)


def _row_line(row: dict) -> str:
    if row.get("event"):
        return f"-- {row['event']} at step {row.get('step')}" + (
            f" (max_steps {row['max_steps']})" if row.get("max_steps") else "")
    skip = {"step", "time", "epoch"}
    vals = "  ".join(f"{k}={summary.fmt_num(v)}" for k, v in row.items()
                     if k not in skip and isinstance(v, (int, float)))
    return f"step {row.get('step')}: {vals}"


def cmd_pipeline(args) -> int:
    from workbench.core import pipeline

    runs_dir = paths.runs_dir(args.runs_dir)
    pipe = pipeline.load_pipeline(args.folder, runs_dir)  # every stage validated before anything starts
    for recipe in pipe.recipes:
        consent_to_code(recipe, args.allow_code, runs_dir)
    launched = pipeline.launch_pipeline(pipe, runs_dir, allow_code=args.allow_code)
    pd = launched.pipeline
    _out(f"pipeline {pd.id} started: " + " -> ".join(f"{r.name} ({r.stage})" for r in pipe.recipes))
    if args.detach:
        _out(f"follow it with: workbench pipeline-tail {pd.id}" + _runs_flag(args))
        return EXIT_OK
    return follow_pipeline(pd, args, launched.process)


def follow_pipeline(pd, args, process=None) -> int:
    """Show the pipeline stage by stage until it ends. Ctrl-C (or SIGHUP) stops following, never the pipeline."""
    from workbench.core import pipeline, supervisor
    from workbench.core.metrics import READ_CHUNK, JsonlTail, MetricsHistory
    from workbench.core.rundir import FINAL_STATES, LIVE_STATES

    tty = sys.stdout.isatty()
    shown, ended, tail, hist = None, set(), None, None
    last_line, last_print = "", 0.0

    def ended_line(rd, rs: dict) -> None:
        ended.add(rd.id)
        _out(("\n" if tty and last_line else "") + f"run {rd.id} {rs.get('state')} after "
             f"{summary.fmt_duration(summary.duration_of(rs))}")

    try:
        while True:
            st = pipeline.pipeline_status(pd)
            if process is not None:
                process.poll()  # reap the pipeline runner when it exits
            rd = pipeline.current_run(pd, st)
            if rd is not None and rd.id != (shown.id if shown else None):
                if shown is not None and shown.id not in ended:  # it ended between two polls
                    ended_line(shown, supervisor.status(shown))
                entry = st["stages"][int(st.get("stage") or 1) - 1]
                _out(f"[{st.get('stage')}/{len(st['stages'])}] {entry.get('name')} ({entry.get('stage')}): "
                     f"run {rd.id}")
                shown, tail, hist, last_line = rd, JsonlTail(rd.metrics_path), MetricsHistory(), ""
            if rd is not None and rd.id not in ended:
                hist.add(tail.read_new(max_bytes=READ_CHUNK))
                rs = supervisor.status(rd)
                line, now = _progress_line(hist, rs), time.monotonic()
                if line != last_line and (tty or now - last_print > 2 or rs.get("state") in FINAL_STATES):
                    if tty:
                        sys.stdout.write("\r\x1b[2K" + line)
                        sys.stdout.flush()
                    else:
                        _out(line)
                    last_line, last_print = line, now
                if tail.behind:
                    continue
                if rs.get("state") in FINAL_STATES:
                    ended_line(rd, rs)
            if st.get("state") not in LIVE_STATES:
                break
            time.sleep(0.25)
    except KeyboardInterrupt:
        _out(f"\nstopped following; the pipeline goes on. Re-attach: workbench pipeline-tail {pd.id}{_runs_flag(args)}")
        return EXIT_OK
    return _pipeline_report(pd, st)


def _pipeline_report(pd, st: dict) -> int:
    from workbench.core import pipeline

    state = st.get("state")
    _out(f"pipeline {pd.id} {state} after {summary.fmt_duration(summary.duration_of(st))} "
         f"({pipeline.stage_label(st)})")
    for line in _stage_eval_lines(pd, st):
        _out(line)
    if state == "completed" and st.get("run"):
        _out(f"final model: run:{st['run']}")
    if st.get("error"):
        _err(f"error: {st['error']}")
        _err(f"pipeline log: {pd.log_path}")
    if state in ("failed", "stopped", "killed", "lost"):
        later = "later stages were not started; " if int(st.get("stage") or 1) < len(st.get("stages") or []) else ""
        _err(f"{later}continue it with: workbench pipeline-resume {pd.id}")
    return EXIT_OK if state == "completed" else EXIT_FAILED


def _stage_eval_lines(pd, st: dict) -> list[str]:
    """Each stage's last [eval] result (held-out accuracy, format rate), so a pipeline's report says whether each
    stage made the model better; nothing when no stage has an [eval] section."""
    from workbench.core.metrics import last_row_with

    found = []
    for entry in st.get("stages") or []:
        run = entry.get("run")
        row = last_row_with(pd.runs_dir / run / "metrics.jsonl", "eval/accuracy") if run else None
        if row:
            found.append((entry, row))
    if not found:
        return []
    width = max(len(str(e.get("name"))) for e, _ in found)
    lines = ["held-out eval at the end of each stage:"]
    for entry, row in found:
        n, k = row.get("eval/prompts"), row.get("eval/k") or 1
        lines.append(f"  {str(entry.get('name')):<{width}}  accuracy {summary.fmt_pct(row.get('eval/accuracy'))}  "
                     f"format {summary.fmt_pct(row.get('eval/format_rate'))}  "
                     f"({n} prompts{f' x {k}' if k != 1 else ''}, step {row.get('step')})")
    return lines


def cmd_pipeline_tail(args) -> int:
    from workbench.core import pipeline

    return follow_pipeline(pipeline.find_pipeline(paths.runs_dir(args.runs_dir), args.pipeline), args)


def cmd_pipeline_stop(args) -> int:
    from workbench.core import pipeline

    pd = pipeline.find_pipeline(paths.runs_dir(args.runs_dir), args.pipeline)
    st = pipeline.stop_pipeline(pd, grace=args.timeout, term_grace=10.0, on_phase=_out)
    _out(f"pipeline {pd.id}: {st.get('display_state')} ({pipeline.stage_label(st)})")
    return EXIT_OK


def cmd_pipeline_resume(args) -> int:
    from workbench.core import pipeline

    pd = pipeline.find_pipeline(paths.runs_dir(args.runs_dir), args.pipeline)
    launched = pipeline.resume_pipeline(pd)
    _out(f"pipeline {pd.id} resumed at {pipeline.stage_label(pd.read_status())}")
    if args.detach:
        return EXIT_OK
    return follow_pipeline(pd, args, launched.process)


def cmd_tail(args) -> int:
    from workbench.core import supervisor

    rd = supervisor.find_run(paths.runs_dir(args.runs_dir), args.run)
    if args.vllm:
        return tail_vllm(rd, args.lines)
    return follow(rd, args, print_rows=True, last_lines=args.lines)


def tail_vllm(rd, lines: int) -> int:
    """`tail RUN --vllm`: the log of the run's vLLM server (server mode), followed while the run is live."""
    from workbench.core import supervisor, vllm_server

    if not supervisor.launch_info(rd).get("vllm"):
        raise BadInput(Problem(str(rd.path), "", f"run {rd.id} has no vLLM server (the workbench starts one only "
                               "for train.vllm_mode = \"server\" with [vllm] server_gpus)",
                               f"see its own output: workbench tail {rd.id}"))
    try:
        vllm_server.follow_log(rd, _out, lines)
    except KeyboardInterrupt:
        _out("\nstopped following; the run goes on")
    return EXIT_OK


def cmd_ls(args) -> int:
    """Runs newest first; a pipeline is one line (its state, stage k/n) with its stage runs indented under it.
    Fitted to $COLUMNS (else the terminal, else 120): long run ids are elided in the middle, less needed columns
    dropped (core/runs_table.py); --wide prints every column in full (for scripts)."""
    import shutil

    from workbench.core import pipeline, runs_table

    runs_dir = paths.runs_dir(args.runs_dir)
    groups = pipeline.listing(runs_dir)
    if not groups:
        _out(f"no runs in {runs_dir}")
        return EXIT_OK
    rows = []
    for group in groups:
        if group.pipeline:
            rows.append(("", runs_table.pipeline_cells(group.pipeline, group.status)))
        rows += [("  └ " if group.pipeline else "", runs_table.run_cells(rd, st)) for rd, st in group.runs]
    width = None if getattr(args, "wide", False) else shutil.get_terminal_size((120, 24)).columns
    for line in runs_table.plain_lines(rows, width):
        _out(line)
    return EXIT_OK


def cmd_show(args) -> int:
    from workbench.core import supervisor
    from workbench.core.samples import SampleIndex

    rd = supervisor.find_run(paths.runs_dir(args.runs_dir), args.run)
    st = supervisor.status(rd)
    s = summary.run_summary(rd.metrics_path)
    launch = supervisor.launch_info(rd)
    _out(f"run       {rd.id}")
    _out(f"path      {rd.path}")
    _out(f"state     {st.get('display_state')}" + (f" (exit code {st['exit_code']})" if "exit_code" in st else ""))
    _out(f"stage     {st.get('stage')}    model {st.get('model')}")
    _out(f"progress  {summary.progress_bar(s['step'], s['max_steps'])}")
    _out(f"started   {summary.fmt_time(st.get('started'))}    duration "
         f"{summary.fmt_duration(summary.duration_of(st))}")
    _out(f"command   {' '.join(launch.get('argv', []))}")
    if launch.get("vllm"):
        where = f"127.0.0.1:{st['vllm_port']}, pid {st.get('vllm_pid')}, " if st.get("vllm_port") else ""
        _out(f"vllm      server on GPU(s) {launch['vllm'].get('gpus')} ({where}{st.get('vllm_phase') or 'not started'}"
             f"); log: workbench tail {rd.id} --vllm")
    if st.get("error"):
        _out(f"error     {st['error']}")
    if st.get("hint"):
        _out(f"hint      {st['hint']}")
    if s["latest"]:
        _out("latest    " + "  ".join(f"{k}={summary.fmt_num(v)}" for k, v in sorted(s["latest"].items())))
    if rd.final_model.is_dir():
        _out(f"final     {rd.final_model}  (use as model.path = \"run:{rd.id}\")")
    index = SampleIndex(rd.samples_path)  # a big file: only its newest part is read
    index.read_new(budget_s=0)
    if index.steps:
        last = index.steps[-1]
        batch = sorted(index.rows(last), key=lambda r: -(r.get("reward") or 0))
        _out(f"samples   step {last}, {len(batch)} completions (best first):")
        for line in _sample_lines(batch[: args.samples]):
            _out(line)
    from workbench.core.discovery import run_dataset

    made = run_dataset(rd.path)  # best-of-k and distill-offline write one
    if made is not None:
        rows = "?" if made.rows is None else f"{made.rows:,}"
        _out(f"dataset   {made.path}  ({rows} rows of prompt/completion; an sft recipe trains on it: "
             f"data.path = \"{made.path}\")")
    from workbench.core import evals

    results = evals.read_results(rd.path / "evals")
    if results:
        _out(f"evals     {len(results)} in {rd.path / 'evals'} (workbench eval {rd.id} --data FILE):")
        _out("\n".join("  " + line for line in evals.format_table(results).splitlines()))
    return EXIT_OK


def _sample_lines(rows: list[dict]) -> list[str]:
    """Completions under their prompt ("system: … / user: …" for a chat prompt), prompts in the order of their
    first completion in ``rows``."""
    from workbench.core.samples import chat_line

    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(json.dumps([bool(r.get("eval")), r.get("prompt")]), []).append(r)
    out = []
    for members in groups.values():
        label = "eval prompt" if members[0].get("eval") else "prompt"
        prompt = "".join(c if c.isprintable() else "·" for c in chat_line(members[0].get("prompt"), width=120))
        out.append(f"  {label}  {prompt}")
        for r in members:
            rewards = " ".join(f"{k}={summary.fmt_num(v)}" for k, v in (r.get("rewards") or {}).items())
            out.append(f"    reward {summary.fmt_num(r.get('reward'))} adv {summary.fmt_num(r.get('advantage'))} "
                       f"[{rewards}]  {json.dumps(r.get('completion', ''))[:100]}")
    return out


def cmd_eval(args) -> int:
    """Generate for held-out prompts and score: accuracy, format rate, pass@k, maj@k, the k curve, lengths."""
    from workbench.core import evalrun, evals

    runs_dir = paths.runs_dir(args.runs_dir)
    target = evalrun.resolve_target(args.target, runs_dir)
    baseline = evalrun.resolve_target(args.baseline, runs_dir, key="--baseline") if args.baseline else None
    data = evalrun.check_data(args.data)
    if not evalrun.has_answers(data):
        _err(f"{data}: no 'answer' column (nor reference replies): accuracy, pass@k and maj@k are not computed")
    if args.k < 1 or args.max_new_tokens < 1 or args.max_prompts < 0 or args.batch_size < 1:
        raise BadInput(Problem("", "--k", "--k, --max-new-tokens and --batch-size must be >= 1, --max-prompts >= 0",
                               "e.g. --k 4 --max-new-tokens 64"))
    temperature = args.temperature if args.temperature is not None else (0.7 if args.k > 1 else 0.0)
    name = evals.safe_name(args.name or f"{target.short}-{data.stem}")
    jobs = [evalrun.Job(target, name)]
    if baseline is not None:
        other = f"{name}-baseline" if args.name else evals.safe_name(f"{baseline.short}-{data.stem}")
        if other == name:  # two runs' final models share the short name "final": never overwrite the target's file
            other = evals.safe_name(f"{baseline.run.id}-{other}" if baseline.run is not None else f"{name}-baseline")
        jobs.append(evalrun.Job(baseline, other, role="baseline"))
    folder = evalrun.out_dir(target, args.out)
    settings = {"data": str(data), "system_prompt": args.system_prompt if args.system_prompt is not None
                else target.system_prompt, "k": args.k, "temperature": temperature,
                "max_new_tokens": args.max_new_tokens, "max_prompts": args.max_prompts,
                "batch_size": args.batch_size, "seed": args.seed}
    log = jobs[0].out(folder).with_suffix(".log")
    try:
        rc = evalrun.run_child(folder, jobs, settings, on_line=_out)
    except KeyboardInterrupt:
        _err(f"\ninterrupted: the eval was stopped (log: {log})")
        return EXIT_FAILED
    results = [evalrun.read_result(j.out(folder)) for j in jobs]
    if rc != 0 or not all(results):
        _err("\n".join(evalrun.last_lines(log)))
        _err(f"eval failed (exit code {rc}); full log: {log}")
        return EXIT_FAILED
    _out("")
    _out(evals.format_result(results[0]))
    if len(results) > 1:
        _out("")
        _out(evals.format_result(results[1]))
        _out("")
        _out(evals.format_comparison(results[0], results[1]))
    names = jobs[0].name if len(jobs) == 1 else "{" + ",".join(j.name for j in jobs) + "}"
    _out(f"\nresults: {folder}/{names}.json (+ .jsonl: every completion)")
    return EXIT_OK


def cmd_report(args) -> int:
    from workbench.core import supervisor
    from workbench.core.report import write_report

    runs_dir = paths.runs_dir(args.runs_dir)
    rds = [supervisor.find_run(runs_dir, ref) for ref in args.runs]
    if args.output:
        out = Path(args.output)
    elif len(rds) == 1:
        out = rds[0].path / "report"
    else:
        raise BadInput(Problem("", "-o", "several runs need an output folder", "pass -o DIR"))
    index = write_report(rds, out, embed=args.embed, force=args.force)
    _out(f"wrote {index}" + ("" if args.embed else f" (charts in {index.parent / 'charts'})"))
    return EXIT_OK


def cmd_compare(args) -> int:
    from workbench.core import compare, supervisor

    runs_dir = paths.runs_dir(args.runs_dir)
    hint = "e.g. workbench compare RUN_A RUN_B (run ids from `workbench ls`)"
    if len(args.runs) < 2:
        raise BadInput(Problem("", "", f"compare needs two or more runs, got {len(args.runs)}", hint))
    rds = {rd.path.resolve(): rd for rd in (supervisor.find_run(runs_dir, ref) for ref in args.runs)}
    if len(rds) < 2:
        raise BadInput(Problem("", "", "those name the same run twice: compare needs two different runs", hint))
    _out(compare.format_text([compare.load_run(rd, supervisor.status(rd)) for rd in rds.values()]))
    return EXIT_OK


def cmd_stop(args) -> int:
    from workbench.core import supervisor

    rd = supervisor.find_run(paths.runs_dir(args.runs_dir), args.run)
    st = supervisor.stop(rd, grace=args.timeout, term_grace=10.0, on_phase=_out)
    _out(f"run {rd.id}: {st.get('state')}")
    return EXIT_OK


def cmd_resume(args) -> int:
    from workbench.core import supervisor

    rd = supervisor.find_run(paths.runs_dir(args.runs_dir), args.run)
    launched = supervisor.resume(rd)
    _out(f"run {rd.id} resumed from {rd.read_status().get('resume_from')}")
    if args.detach:
        return EXIT_OK
    return follow(rd, args, launched.process)


def cmd_start(args) -> int:
    from workbench.core import supervisor

    rd = supervisor.find_run(paths.runs_dir(args.runs_dir), args.run)
    launched = supervisor.start(rd)
    _out(f"run {rd.id} started: {rd.path}")
    if args.detach:
        return EXIT_OK
    return follow(rd, args, launched.process)


def cmd_rm(args) -> int:
    from workbench.core import supervisor

    for ref in args.runs:
        rd = supervisor.find_run(paths.runs_dir(args.runs_dir), ref)
        supervisor.delete(rd)
        _out(f"deleted run {rd.id}")
    return EXIT_OK


def cmd_prepare(args) -> int:
    from workbench.core import supervisor

    runs_dir = paths.runs_dir(args.runs_dir)
    recipe = load_valid_recipe(args.recipe, args.set, runs_dir, allow_code=args.allow_code)
    rd = supervisor.prepare(recipe, runs_dir)
    print(rd.path, flush=True)  # alone on stdout, for RUN_DIR=$(workbench prepare ...)
    return EXIT_OK


def cmd_export(args) -> int:
    from workbench.core import launch, supervisor
    from workbench.core.models import builtin_dir, parse_model_ref, run_final

    runs_dir = paths.runs_dir(args.runs_dir)
    recipe = load_valid_recipe(args.recipe, args.set, runs_dir)
    frozen = supervisor.freeze(recipe)
    if args.to == "shell":
        placeholder = launch.run_dir_placeholder()  # stands for "$RUN_DIR" while the plan is built
        text = launch.shell_script(supervisor.launch_plan(frozen, placeholder), placeholder)
    elif args.to == "deepspeed":
        text = json.dumps(launch.deepspeed_config(frozen, supervisor.schema_defaults(frozen)), indent=2) + "\n"
    elif args.to == "accelerate":
        text = launch.accelerate_config(frozen)
    elif args.to == "sbatch":
        text = launch.sbatch_script(frozen)
    else:  # trl
        ref = parse_model_ref(frozen.get("model.path", ""), frozen.resolve_path)
        model = str(builtin_dir(ref.value)) if ref.kind == "builtin" else (
            str(run_final(runs_dir, ref.value)) if ref.kind == "run" else ref.value)
        text = launch.trl_config(frozen, model)
    return _emit(text, args.output, overwrite=True)


def cmd_estimate(args) -> int:
    from workbench.core import estimate as est

    if args.recipe:
        from workbench.core.recipe import Recipe

        recipe = Recipe.load(args.recipe)
        recipe.apply_overrides(args.set or [])
        try:
            result = est.estimate_recipe(recipe, paths.runs_dir(args.runs_dir))
        except ValueError as e:
            raise BadInput(Problem(args.recipe, "model.path", str(e), "or: workbench estimate --params 7e9 ..."))
        gpu_gb = recipe.get("launch.gpu_memory_gb", 80)
    elif args.params:
        params = int(float(args.params))
        shape = est.typical_shape(params)  # the activations need a shape; the count alone has none
        checkpointing = not args.no_gradient_checkpointing
        result = est.estimate(params, gpus=args.gpus, zero=args.zero,
                              trainable=int(float(args.trainable)) if args.trainable else None,
                              offload_optimizer="optimizer" in (args.offload or []),
                              offload_params="params" in (args.offload or []), nodes=args.nodes, shape=shape,
                              micro_batch=args.micro_batch, seq_len=args.seq_len,
                              gradient_checkpointing=checkpointing)
        result.notes.append(f"activations for the {shape.source}: {shape.layers} layers, hidden {shape.hidden}, "
                            f"{shape.heads} heads; micro batch {args.micro_batch} x {args.seq_len} tokens, gradient "
                            f"checkpointing {'on' if checkpointing else 'off'}; pass a RECIPE for your model's own")
        gpu_gb = args.gpu_gb
    else:
        raise BadInput(Problem("", "", "give a RECIPE or --params N", "e.g. workbench estimate --params 7e9 --gpus 8 "
                                                                      "--zero 3"))
    _out(result.table(gpu_gb))
    return EXIT_OK


def cmd_new(args) -> int:
    from workbench.core.stages import STAGES
    from workbench.core.templates import template
    from workbench.core.problems import did_you_mean

    if args.stage not in STAGES:
        raise BadInput(Problem("", "stage", f"unknown stage '{args.stage}'",
                               did_you_mean(args.stage, STAGES) or f"stages: {', '.join(STAGES)}"))
    text = template(args.stage, args.output)  # its header names the file and the command that runs it
    if args.all:
        from workbench.core.templates import all_fields_comment

        text += all_fields_comment(args.stage)
    return _emit(text, args.output, overwrite=args.force)


def cmd_top(args) -> int:
    """The machine's load, one snapshot a second (plain text; --once prints one). Ctrl-C ends it (exit 0)."""
    import shutil

    from workbench.core import system

    runs_dir = paths.runs_dir(args.runs_dir)
    sampler, tty = system.SystemSampler(runs_dir), sys.stdout.isatty()
    try:
        while True:
            s = sampler.sample()
            width = shutil.get_terminal_size((80, 24)).columns if tty else 80
            text = system.top_text(s, system.live_run_gpu_memory(s.gpu, runs_dir), str(runs_dir), width)
            if args.once:
                _out(text)
                return EXIT_OK
            sys.stdout.write(("\x1b[H\x1b[2J" if tty else "") + text + "\n" + ("" if tty else "\n"))
            sys.stdout.flush()
            time.sleep(max(system.MIN_INTERVAL_S, args.interval))
    except KeyboardInterrupt:
        return EXIT_OK


def cmd_serve(args) -> int:
    from workbench.serve import serve

    return serve(paths.runs_dir(args.runs_dir), args.host, args.port, args.public_url)


def cmd_tui(args, recipe: Path | None = None, run: Path | None = None) -> int:
    try:
        from workbench.tui.app import run_app
    except ImportError:
        _err("the TUI is not available in this build; use the subcommands (workbench --help)")
        return EXIT_BAD_INPUT
    return run_app(paths.runs_dir(args.runs_dir), recipe=recipe, run=run)


def cmd_edit(args) -> int:
    """The editor on a recipe file; a missing, unreadable or non-TOML file is one message and exit 2, no TUI."""
    from workbench.core.recipe import Recipe

    recipe = Recipe.load(args.recipe)
    return cmd_tui(args, recipe=recipe.path)


def cmd_open(args) -> int:
    from workbench.core import supervisor

    rd = supervisor.find_run(paths.runs_dir(args.runs_dir), args.run)
    return cmd_tui(args, run=rd.path)


def edit_shortcut(argv: list[str], commands) -> list[str]:
    """`workbench FILE.toml` is `workbench edit FILE.toml`: the first word that is no command and names a .toml
    file (or an existing file) gets `edit` in front of it."""
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--runs-dir":
            i += 2
            continue
        if word.startswith("-"):
            i += 1
            continue
        if word not in commands and (word.endswith(".toml") or Path(word).is_file()):
            return argv[:i] + ["edit"] + argv[i:]
        return argv
    return argv


# -- parser ----------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from workbench import __version__

    p = argparse.ArgumentParser(prog="workbench", description="A terminal workbench for LLM post-training. "
                                "`workbench` alone opens the TUI; `workbench FILE.toml` opens its editor on a recipe.")
    p.add_argument("--runs-dir", help="runs directory (default: $WORKBENCH_RUNS or ./runs)")
    p.add_argument("--version", action="version", version=f"workbench {__version__}")
    sub = p.add_subparsers(dest="command")

    def add(name, func, help_):
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.add_argument("--runs-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        sp.set_defaults(func=func)
        return sp

    sp = add("run", cmd_run, "validate a recipe and launch it as a detached run; follow it unless --detach")
    sp.add_argument("recipe")
    sp.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override a recipe value")
    sp.add_argument("--detach", action="store_true", help="start and return at once")
    sp.add_argument("--allow-code", action="store_true", help=ALLOW_CODE_HELP)
    sp.add_argument("--queue", action="store_true", help="do not start it now: it waits in the run queue until the "
                    "GPUs it needs are free (no GPUs: until the queue's run before it ended); returns at once")
    from workbench.cli_queue import add_parsers as add_queue_parsers, add_setting_flags

    add_setting_flags(sp)
    add_queue_parsers(add)
    sp = add("pipeline", cmd_pipeline, "validate a folder of recipes and start it as a detached pipeline (stages in "
             "name order, each after the previous completed; run:previous chains them); follow it unless --detach")
    sp.add_argument("folder")
    sp.add_argument("--detach", action="store_true", help="start and return at once")
    sp.add_argument("--allow-code", action="store_true", help=ALLOW_CODE_HELP)
    sp = add("pipeline-tail", cmd_pipeline_tail, "follow a pipeline stage by stage (Ctrl-C stops following only)")
    sp.add_argument("pipeline")
    sp = add("pipeline-stop", cmd_pipeline_stop, "stop a pipeline: its current stage's run is stopped (checkpoint, "
             "then SIGTERM, then SIGKILL) and later stages do not start")
    sp.add_argument("pipeline")
    sp.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the run's clean stop")
    sp = add("pipeline-resume", cmd_pipeline_resume, "continue a failed/stopped/killed pipeline from its current "
             "stage (the run resumes from its checkpoint, or starts afresh), then the later stages")
    sp.add_argument("pipeline")
    sp.add_argument("--detach", action="store_true")
    sp = add("edit", cmd_edit, "open the TUI's recipe editor on a file (also: workbench FILE.toml)")
    sp.add_argument("recipe")
    sp = add("open", cmd_open, "open the TUI on a run's monitor")
    sp.add_argument("run")
    sp = add("validate", cmd_validate, "check a recipe and report every problem")
    sp.add_argument("recipe")
    sp.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE")
    sp = add("ls", cmd_ls, "list runs (fitted to $COLUMNS, default 120)")
    sp.add_argument("--wide", action="store_true", help="every column in full, whatever the width")
    sp = add("show", cmd_show, "show a run's status, metrics and latest samples")
    sp.add_argument("run")
    sp.add_argument("--samples", type=int, default=4, help="how many completions to show")
    sp = add("compare", cmd_compare, "compare runs: the final value of every metric they share, their evals, and "
             "the recipe keys that differ (the TUI charts them: space marks runs in the list, C compares)")
    sp.add_argument("runs", nargs="*", metavar="RUN")
    sp = add("eval", cmd_eval, "evaluate a model on held-out prompts (k samples each): accuracy, format rate, "
             "pass@k, maj@k, the accuracy-vs-k curve, lengths; TARGET: a run (its final model), RUN/checkpoint-N, "
             "builtin:NAME, a model folder or a hub id")
    sp.add_argument("target")
    sp.add_argument("--data", required=True, help="jsonl/json/csv/parquet with a 'prompt' and an 'answer' column")
    sp.add_argument("--k", type=int, default=1, help="samples per prompt (default 1)")
    sp.add_argument("--temperature", type=float, help="sampling temperature (default 0 = greedy for k = 1, else 0.7)")
    sp.add_argument("--max-new-tokens", type=int, default=64)
    sp.add_argument("--max-prompts", type=int, default=0, help="the first N prompts (default all)")
    sp.add_argument("--baseline", metavar="MODEL", help="evaluate this model too (same prompts) and show the difference")
    sp.add_argument("--name", help="results name (default: TARGET-DATA)")
    sp.add_argument("--system-prompt", help="system message for every prompt (default: a run's [data] system_prompt)")
    sp.add_argument("--out", metavar="DIR", help="results folder when TARGET is not a run (default ./evals)")
    sp.add_argument("--batch-size", type=int, default=16, help="prompts per generation batch")
    sp.add_argument("--seed", type=int, default=0)
    sp = add("report", cmd_report, "write an HTML report (recipe, command, status, metrics charts, evals, best and "
             "worst completions) of one run, or of several side by side; open DIR/index.html in a browser")
    sp.add_argument("runs", nargs="+", metavar="RUN")
    sp.add_argument("-o", "--output", metavar="DIR", help="folder to write (default for one run: RUN_DIR/report)")
    sp.add_argument("--embed", action="store_true", help="put the charts into index.html (one file to send)")
    sp.add_argument("--force", action="store_true", help="replace an index.html that is not a workbench report")
    sp = add("tail", cmd_tail, "follow a run's metrics until it ends (Ctrl-C stops following, not the run)")
    sp.add_argument("run")
    sp.add_argument("-n", "--lines", type=int, default=20, metavar="N",
                    help="start from the last N lines of metrics.jsonl (0: from the beginning; default 20)")
    sp.add_argument("--vllm", action="store_true", help="the run's vLLM server log (RUN_DIR/vllm.log) instead")
    sp = add("stop", cmd_stop, "stop a run: checkpoint and end, then SIGTERM, then SIGKILL")
    sp.add_argument("run")
    sp.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for a clean stop")
    sp = add("resume", cmd_resume, "continue a stopped/failed/killed run from its last checkpoint")
    sp.add_argument("run")
    sp.add_argument("--detach", action="store_true")
    sp = add("start", cmd_start, "start a prepared run (made by `workbench prepare`) here")
    sp.add_argument("run")
    sp.add_argument("--detach", action="store_true")
    sp = add("rm", cmd_rm, "delete runs that are not live (prepared or finished)")
    sp.add_argument("runs", nargs="+", metavar="RUN")
    sp = add("prepare", cmd_prepare, "make a run directory without starting it (for sbatch); prints its path")
    sp.add_argument("recipe")
    sp.add_argument("--allow-code", action="store_true", help=ALLOW_CODE_HELP)
    sp.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE")
    sp = add("export", cmd_export, "print the command or config files a recipe runs with")
    sp.add_argument("recipe")
    sp.add_argument("--to", required=True, choices=("shell", "accelerate", "deepspeed", "sbatch", "trl"))
    sp.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE")
    sp.add_argument("-o", "--output", help="write to this file")
    sp = add("estimate", cmd_estimate, "GPU memory per device for a recipe, or for --params N")
    sp.add_argument("recipe", nargs="?")
    sp.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE")
    sp.add_argument("--params", help="number of parameters, e.g. 7e9")
    sp.add_argument("--trainable", help="trainable parameters (LoRA), default all")
    sp.add_argument("--gpus", type=int, default=1, help="total GPUs (data-parallel degree)")
    sp.add_argument("--nodes", type=int, default=1)
    sp.add_argument("--zero", type=int, default=0, choices=(0, 1, 2, 3))
    sp.add_argument("--offload", action="append", choices=("optimizer", "params"))
    sp.add_argument("--gpu-gb", type=float, default=80.0, help="GPU size to warn against")
    sp.add_argument("--micro-batch", type=int, default=8, help="with --params: sequences per GPU per step "
                    "(per_device_train_batch_size; default 8)")
    sp.add_argument("--seq-len", type=int, default=1024, help="with --params: tokens per sequence (default 1024)")
    sp.add_argument("--no-gradient-checkpointing", action="store_true",
                    help="with --params: keep every layer's activations (trl turns checkpointing on by default)")
    sp = add("new", cmd_new, "print (or write) a recipe template for a stage")
    sp.add_argument("stage")
    sp.add_argument("-o", "--output", help="write to this file (atomically)")
    sp.add_argument("--force", action="store_true")
    sp.add_argument("--all", action="store_true", help="append every trl config field (commented) with its help")
    sp = add("top", cmd_top, "CPU, RAM, free disk of the runs directory, each GPU (utilisation, memory, temperature, "
             "power) and the GPU memory of each live run, refreshed every second (Ctrl-C ends it)")
    sp.add_argument("--once", action="store_true", help="print one snapshot and exit")
    sp.add_argument("--interval", type=float, default=1.0, help="seconds between snapshots (at least 1)")
    sp = add("serve", cmd_serve, "serve the TUI in a browser through textual-serve (pip install 'workbench[serve]'); "
             "each browser tab gets its own TUI, and closing it never touches a run")
    sp.add_argument("--port", type=int, default=8000)
    sp.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; any other, e.g. "
                    "0.0.0.0, lets anyone on the network drive training: there is no login)")
    sp.add_argument("--public-url", help="the URL browsers reach it by, behind a proxy (default: the address the "
                    "browser used)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    commands = next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    args = parser.parse_args(edit_shortcut(sys.argv[1:] if argv is None else list(argv), commands))
    try:
        if not args.command:
            return cmd_tui(args)
        return args.func(args)
    except BadInput as e:
        _report(e.problems)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
