"""The import-boundary benchmark, run as a check: the TUI (runs list, stage picker, editor, monitor with every
tab) and each light CLI command, each in a fresh Python, load none of the training stack and no matplotlib; and
matplotlib is loaded by the report command only when a report is written."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT
from tests.tui.conftest import make_run


def test_tui_and_light_cli_load_no_training_stack(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "imports", "--quick", "--work", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads((tmp_path / "results" / "quick-imports.json").read_text())["results"]
    names = [r["name"] for r in results]
    assert any(n.startswith("TUI") for n in names) and any("`ls`" in n for n in names), names
    forbidden = [r for r in results if r["ok"] is False]
    assert not forbidden, forbidden
    assert "benchmark failed" not in names


def test_matplotlib_only_when_a_report_is_written(runs_dir, tmp_path):
    """Importing the CLI, the TUI with its monitor and the report modules, and running a light command, loads no
    matplotlib; writing a report does (so this check sees matplotlib when it is there)."""
    make_run(runs_dir, "20260101-000000-r", steps=3, max_steps=3)
    code = f"""
import io, sys, contextlib
import workbench.cli as cli, workbench.tui.app, workbench.tui.screens.monitor, workbench.tui.reporting
import workbench.core.report, workbench.core.report_html
loaded = lambda: sorted(m for m in sys.modules if m.split(".")[0] == "matplotlib")
with contextlib.redirect_stdout(io.StringIO()):
    codes = [cli.main(["--runs-dir", {str(runs_dir)!r}, "ls"])]
    before = loaded()
    codes.append(cli.main(["--runs-dir", {str(runs_dir)!r}, "report", "last", "-o", {str(tmp_path / "out")!r}]))
print(codes, before, bool(loaded()))
sys.exit(0 if codes == [0, 0] and not before and loaded() else 1)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
