"""`workbench edit FILE` / `workbench FILE.toml` / `workbench open RUN` refuse bad input before the TUI starts (one
message, exit 2, no traceback); `--version`; `new -o` names its output in the header."""
from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import workbench_cmd
from workbench import __version__
from workbench.cli import build_parser, edit_shortcut


def wb(*args, cwd=None) -> subprocess.CompletedProcess:
    proc = subprocess.run(workbench_cmd(*args), capture_output=True, text=True, timeout=60, cwd=cwd,
                          env=os.environ.copy(), stdin=subprocess.DEVNULL, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_version():
    proc = wb("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"workbench {__version__}"


@pytest.mark.parametrize("form", [("edit",), ()])  # `workbench edit FILE` and `workbench FILE.toml`
def test_edit_a_missing_file_exits_2(tmp_path, form):
    proc = wb(*form, str(tmp_path / "nope.toml"))
    assert proc.returncode == 2
    assert "nope.toml" in proc.stderr and "recipe file not found" in proc.stderr
    assert "invalid choice" not in proc.stderr and len(proc.stderr.splitlines()) <= 3


@pytest.mark.parametrize("form", [("edit",), ()])
def test_edit_a_file_that_is_not_toml_exits_2(tmp_path, form):
    bad = tmp_path / "bad.toml"
    bad.write_text('[run]\nstage = "grpo\n')
    proc = wb(*form, str(bad))
    assert proc.returncode == 2
    assert "bad.toml" in proc.stderr and "not valid TOML" in proc.stderr and "line 2" in proc.stderr


def test_edit_an_unreadable_file_exits_2(tmp_path, monkeypatch, capsys):
    locked = tmp_path / "locked.toml"
    locked.write_text("[run]\n")
    locked.chmod(0)
    if os.geteuid() != 0:
        proc = wb("edit", str(locked))
        assert proc.returncode == 2 and "permission denied" in proc.stderr
        return
    # root reads every file (CI runs as root): the read fails as it does for a user, in-process
    from pathlib import Path

    from workbench import cli

    real = Path.read_bytes

    def denied(self):
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    assert cli.main(["edit", str(locked)]) == 2
    err = capsys.readouterr().err
    assert "locked.toml" in err and "permission denied" in err


def test_edit_a_folder_exits_2(tmp_path):
    proc = wb("edit", str(tmp_path))
    assert proc.returncode == 2 and "is a folder" in proc.stderr


def test_open_an_unknown_run_exits_2(runs_dir):
    proc = wb("--runs-dir", str(runs_dir), "open", "no-such-run")
    assert proc.returncode == 2 and "no-such-run" in proc.stderr


def test_a_toml_argument_means_edit():
    commands = next(a.choices for a in build_parser()._actions if hasattr(a, "choices") and a.choices
                    and "run" in a.choices)
    assert edit_shortcut(["my.toml"], commands) == ["edit", "my.toml"]
    assert edit_shortcut(["--runs-dir", "r", "my.toml"], commands) == ["--runs-dir", "r", "edit", "my.toml"]
    assert edit_shortcut(["validate", "my.toml"], commands) == ["validate", "my.toml"]
    assert edit_shortcut([], commands) == []  # `workbench` alone: the runs list


def test_new_to_a_file_names_it_in_the_header(tmp_path):
    proc = wb("new", "dpo", "-o", "dpo.toml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "dpo.toml").read_text()
    assert "#   workbench run dpo.toml" in text and "recipes/dpo-tiny.toml" not in text
