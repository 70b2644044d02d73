"""The import-boundary benchmark, run as a check: the TUI (runs list, stage picker, editor, monitor with every
tab) and each light CLI command, each in a fresh Python, load none of the training stack."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_tui_and_light_cli_load_no_training_stack(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "imports", "--work", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads((tmp_path / "results" / "imports.json").read_text())["results"]
    names = [r["name"] for r in results]
    assert any(n.startswith("TUI") for n in names) and any("`ls`" in n for n in names), names
    forbidden = [r for r in results if r["ok"] is False]
    assert not forbidden, forbidden
    assert "benchmark failed" not in names
