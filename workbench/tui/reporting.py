"""Writing a report (workbench.core.report) from the TUI: in a thread worker, so matplotlib's import and the
drawing never hold up the UI; the path (or what went wrong) comes back as a notification.

The monitor calls ``write_report_in_background(screen, [run])`` (RUN_DIR/report/); the Compare screen calls it with
the runs it compares (RUNS_DIR/reports/compare-<time>/ unless given a folder). No matplotlib import here.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from textual.screen import Screen
from textual.worker import Worker

from workbench.core.problems import BadInput
from workbench.core.rundir import RunDir


def default_report_dir(runs: list[RunDir]) -> Path:
    """RUN_DIR/report for one run; RUNS_DIR/reports/compare-<time> for several (not a run: no status.json)."""
    if len(runs) == 1:
        return runs[0].path / "report"
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return runs[0].path.parent / "reports" / f"compare-{stamp}"


def write_report_in_background(screen: Screen, runs: list[RunDir | Path], out_dir: Path | None = None) -> Worker:
    """Start writing the report of ``runs`` to ``out_dir`` (default: ``default_report_dir``) in a thread worker of
    ``screen``; notifies "report written: PATH/index.html" when done, or the problem. Returns the worker."""
    rds = [r if isinstance(r, RunDir) else RunDir(Path(r)) for r in runs]
    out = Path(out_dir) if out_dir is not None else default_report_dir(rds)
    app = screen.app
    app.notify(f"writing the report of {rds[0].id if len(rds) == 1 else f'{len(rds)} runs'}…", timeout=3)

    def job() -> Path | None:
        from workbench.core.report import write_report

        try:
            index = write_report(rds, out)
        except BadInput as e:
            app.call_from_thread(app.notify, "\n".join(p.format() for p in e.problems), title="no report",
                                 severity="error")
            return None
        except Exception as e:  # noqa: BLE001 - a report that fails says why; the TUI goes on
            app.call_from_thread(app.notify, f"{type(e).__name__}: {e}", title="report failed", severity="error")
            return None
        app.call_from_thread(app.notify, f"report written: {index}", title="report", timeout=12)
        return index

    return screen.run_worker(job, thread=True, exclusive=True, group="report", exit_on_error=False,
                             name=f"report {out}")
