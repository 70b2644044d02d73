"""The CLI's run-queue words (workbench.core.queue). Light, like workbench.cli, which registers them.

  workbench run RECIPE --queue [--stop-on-error | --keep-going]   prepare the run and let it wait in the queue
  workbench queue [--stop-on-error | --keep-going]   the queue process's state, the queue's live runs and the
                                                     waiting ones in order (and the stop-on-error setting)
  workbench queue move RUN up|down|top|bottom        reorder a waiting run
  workbench queue cancel RUN                         a waiting run leaves the queue without running (also: stop RUN)
  workbench queue start-now RUN                      start a waiting run now, whatever the GPUs
  workbench queue resume [--stop-on-error | --keep-going]   a new queue process for the waiting runs (after it was
                                                     killed, or halted by a failed run with stop-on-error)
  workbench queue add RUN                            a prepared run (workbench prepare) joins the queue
"""
from __future__ import annotations

import argparse

from workbench.core import paths, summary

EXIT_OK = 0


def _out(text: str = "") -> None:
    print(text, flush=True)


def add_setting_flags(sp: argparse.ArgumentParser) -> None:
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--stop-on-error", dest="stop_on_error", action="store_const", const=True, default=None,
                   help="a failed, killed or lost run of the queue halts it (a queue setting, kept)")
    g.add_argument("--keep-going", dest="stop_on_error", action="store_const", const=False,
                   help="a failed run does not stop the queue (the default; a queue setting, kept)")


def add_parsers(add) -> None:
    """``add(name, func, help)`` is cli.build_parser's helper; it returns the subparser."""
    sp = add("queue", cmd_queue, "the run queue: its process's state, the runs it started and the waiting ones in "
             "order; `workbench run RECIPE --queue` adds a run")
    add_setting_flags(sp)
    sub = sp.add_subparsers(dest="queue_command", metavar="{move,cancel,start-now,resume,add}")

    def word(name, func, help_):
        w = sub.add_parser(name, help=help_, description=help_)
        w.add_argument("--runs-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        w.set_defaults(queue_func=func)
        return w

    w = word("move", cmd_move, "move a waiting run in the queue")
    w.add_argument("run")
    w.add_argument("where", choices=("up", "down", "top", "bottom"))
    word("cancel", cmd_cancel, "a waiting run leaves the queue without running").add_argument("run")
    word("start-now", cmd_start_now, "start a waiting run now, whatever the GPUs").add_argument("run")
    w = word("resume", cmd_resume, "start a new queue process for the waiting runs")
    add_setting_flags(w)
    word("add", cmd_add, "a prepared run (workbench prepare) joins the end of the queue").add_argument("run")


def run_queued(recipe, runs_dir, args) -> int:
    """`workbench run RECIPE --queue`: the run waits; this returns at once."""
    from workbench.core import queue

    got = queue.queue_recipe(recipe, runs_dir, stop_on_error=args.stop_on_error)
    _out(f"run {got.run.id} waits in the queue (#{got.position}): {got.run.path}")
    _say_process(runs_dir, got.process)
    _out(f"follow it with: workbench tail {got.run.id}" + _runs_flag(args))
    return EXIT_OK


def _say_process(runs_dir, started) -> None:
    from workbench.core import lifecycle, queue

    st = queue.view(runs_dir).process
    if started is not None:
        _out(f"queue process started (pid {started.pid})")
    elif st.get("state") == lifecycle.STOPPED:
        _out(f"the queue is halted: {st.get('error') or 'stopped'}; `workbench queue resume` goes on")
    elif st.get("state") not in lifecycle.LIVE_STATES:
        _out(f"no queue process: {queue.process_line(st)}")


def _runs_flag(args) -> str:
    return f" --runs-dir {args.runs_dir}" if getattr(args, "runs_dir", None) else ""


def _find(args):
    from workbench.core import supervisor

    return supervisor.find_run(paths.runs_dir(args.runs_dir), args.run)


def cmd_queue(args) -> int:
    if getattr(args, "queue_func", None):
        return args.queue_func(args)
    from workbench.core import queue

    runs_dir = paths.runs_dir(args.runs_dir)
    if args.stop_on_error is not None:
        queue.set_stop_on_error(runs_dir, args.stop_on_error)
    v = queue.view(runs_dir)
    _out(f"queue process: {queue.process_line(v.process)}; stop on error: {'on' if v.stop_on_error else 'off'}")
    if not v.active and not v.waiting:
        _out("the queue is empty (workbench run RECIPE --queue adds a run)")
    else:
        blocked = v.process.get("blocked") or {}
        rows = [("#", "RUN", "STATE", "NEEDS", "NOTE")]
        for rd, st in v.active:
            gpus = st.get("gpus") or []
            rows.append(("", rd.id, st.get("display_state") or "?", _needs(st),
                         ("GPU " + ",".join(map(str, gpus)) if gpus else "") + (" (started now)" if st.get(
                             "started_now") else "")))
        for n, (rd, st) in enumerate(v.waiting, 1):
            rows.append((str(n), rd.id, f"waiting #{n}", _needs(st), blocked.get("why", "")
                         if blocked.get("run") == rd.id else ""))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            _out("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    recent = v.process.get("recent") or []
    if recent:
        _out("recently ended: " + ", ".join(f"{r['run']} {r['state']}" + (
            f" at {summary.fmt_time(r['ended'])}" if r.get("ended") else "") for r in recent[:3]))
    return EXIT_OK


def _needs(st: dict) -> str:
    n = int(st.get("gpus_needed") or 0)
    return f"{n} GPU{'s' if n != 1 else ''}" if n else "no GPU"


def cmd_move(args) -> int:
    from workbench.core import queue

    rd = _find(args)
    _out(f"run {rd.id} is now #{queue.move(rd, args.where)} in the queue")
    return EXIT_OK


def cmd_cancel(args) -> int:
    from workbench.core import queue

    rd = _find(args)
    st = queue.cancel(rd)
    _out(f"run {rd.id}: {st.get('display_state')} (it never ran; workbench rm {rd.id} deletes it)")
    return EXIT_OK


def cmd_start_now(args) -> int:
    from workbench.core import queue

    rd = _find(args)
    queue.start_now(rd)
    gpus = rd.read_status().get("gpus") or []
    _out(f"run {rd.id} started" + (f" on GPU {','.join(map(str, gpus))}" if gpus else "")
         + f"; follow it with: workbench tail {rd.id}" + _runs_flag(args))
    return EXIT_OK


def cmd_resume(args) -> int:
    from workbench.core import lifecycle, queue

    runs_dir = paths.runs_dir(args.runs_dir)
    started = queue.resume(runs_dir, args.stop_on_error)
    if started is not None:
        _out(f"queue process started (pid {started.pid}) for {len(queue.waiting_runs(runs_dir))} waiting run(s)")
    elif queue.view(runs_dir).process.get("state") in lifecycle.LIVE_STATES:
        _out(f"the queue process is {queue.process_line(queue.view(runs_dir).process)}: nothing to do")
    else:
        _out("nothing waits in the queue")
    return EXIT_OK


def cmd_add(args) -> int:
    from workbench.core import queue

    rd = _find(args)
    got = queue.enqueue(rd)
    _out(f"run {rd.id} waits in the queue (#{got.position})")
    _say_process(paths.runs_dir(args.runs_dir), got.process)
    return EXIT_OK
