"""An installed workbench, away from the repository: the wheel is built from a copy of the source tree, installed
into a fresh virtual environment in tmp_path, and used from a folder outside the repository.

The fresh environment reuses this environment's heavy packages (torch, trl, ...) without downloading them: after
the wheel is installed, a .pth file appends this environment's site-packages to its sys.path. That folder holds
only the editable install's finder for ``workbench`` (activated by a .pth there, which a .pth-added path does not
run), so the ``workbench`` that imports is the installed wheel; the tests assert that too. Everything is offline.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.e2e

# Not part of what `pip install .` builds from (and the big ones would slow the copy down).
SKIP_TOP = {".git", ".venv", ".cache", ".pytest_cache", "runs", "scratch-runs", "build", "dist", "tests",
            "benchmarks", "__pycache__"}
HEAVY = ("torch", "transformers", "trl", "peft", "datasets", "deepspeed", "accelerate")


class Installed:
    def __init__(self, root: Path):
        self.root = root
        self.venv = root / "venv"
        self.python = self.venv / "bin" / "python"
        self.workbench = self.venv / "bin" / "workbench"
        self.cwd = root / "elsewhere"
        self.cwd.mkdir()
        self.env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        self.env.update(WORKBENCH_CACHE=str(root / "cache"), WORKBENCH_RUNS=str(root / "runs"),
                        XDG_CACHE_HOME=str(root / "xdg"), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
                        PATH=f"{self.venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")

    def run(self, *argv, timeout: float = 120) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(a) for a in argv], cwd=self.cwd, env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        assert proc.returncode == 0, f"{argv}: exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc

    def py(self, code: str, timeout: float = 120) -> str:
        return self.run(self.python, "-c", code, timeout=timeout).stdout


def _pip(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel `pip install .` would install, built offline from a copy (the checkout stays untouched)."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    for entry in ROOT.iterdir():
        if entry.name in SKIP_TOP or entry.name.endswith(".egg-info"):
            continue
        if entry.is_dir():
            shutil.copytree(entry, src / entry.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(entry, src / entry.name)
    _pip("wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(base / "dist"), str(src))
    (whl,) = (base / "dist").glob("workbench-*.whl")
    return whl


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Installed:
    inst = Installed(tmp_path_factory.mktemp("install"))
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(inst.venv)], check=True, timeout=60)
    # pip runs inside the new interpreter (--python): the wheel and its console script land in the new venv.
    _pip("--python", str(inst.python), "install", "--no-deps", "--no-index", "-q", str(wheel))
    site = inst.py("import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    here = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site) / "zz_reuse_heavy_packages.pth").write_text("\n".join(sorted(here)) + "\n")
    return inst


def test_the_wheel_carries_the_stylesheet_recipes_and_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "workbench/tui/app.tcss" in names
    for recipe in (ROOT / "recipes").rglob("*.toml"):
        assert f"workbench/_data/recipes/{recipe.relative_to(ROOT / 'recipes').as_posix()}" in names
    for data in (ROOT / "assets").rglob("*"):
        if data.is_file():
            assert f"workbench/_data/assets/{data.relative_to(ROOT / 'assets').as_posix()}" in names
    assert not [n for n in names if n.startswith(("tests/", "recipes/", "assets/"))]


def test_the_installed_package_is_the_one_that_imports(installed):
    out = installed.py("import workbench, textual; from workbench.core import paths; "
                       "print(workbench.__file__); print(paths.RECIPES_DIR); print(paths.ASSETS_DIR)").split()
    module, recipes, assets = (Path(p) for p in out)
    for p in (module, recipes, assets):
        assert installed.venv in p.parents, p
        assert ROOT not in p.parents, p
    assert (recipes / "sft-tiny.toml").is_file() and (assets / "data" / "format-sft.jsonl").is_file()


def test_help_new_and_validate_from_another_folder(installed):
    assert "usage: workbench" in installed.run(installed.workbench, "--help").stdout
    installed.run(installed.workbench, "new", "sft", "-o", "x.toml")
    text = (installed.cwd / "x.toml").read_text()
    assert str(installed.venv) in text, "the template's data path points at the installed assets"
    out = installed.run(installed.workbench, "validate", "x.toml").stdout
    assert "x.toml: ok" in out
    # A shipped recipe straight from the installed package: its ../assets/... path resolves there too.
    shipped = installed.py("from workbench.core import paths; print(paths.RECIPES_DIR / 'grpo-tiny.toml')").strip()
    assert "ok" in installed.run(installed.workbench, "validate", shipped).stdout


def test_the_tui_starts_with_its_stylesheet_and_stays_light(installed):
    code = f"""
import asyncio, sys
from pathlib import Path
from workbench.tui.app import WorkbenchApp

async def main():
    app = WorkbenchApp(Path("runs"))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        print("screen", type(app.screen).__name__)
        app.new_run("grpo")
        await pilot.pause()
        await pilot.pause()
        print("screen", type(app.screen).__name__)
        print("css", *[str(p) for p in app.css_path])
    print("heavy", *[m for m in {HEAVY!r} if m in sys.modules])

asyncio.run(main())
"""
    lines: dict[str, list[str]] = {}
    for line in installed.py(code).splitlines():
        key, *values = line.split()
        lines.setdefault(key, []).extend(values)
    assert lines["screen"] == ["RunsScreen", "EditorScreen"]  # the runs list, then the editor on a template
    (css,) = lines["css"]
    assert Path(css).is_file() and installed.venv in Path(css).parents
    assert "heavy" in lines and lines["heavy"] == [], "the TUI imported heavy packages"


def test_builtin_model_builds_into_the_cache(installed):
    out = installed.run(installed.python, "-m", "workbench.train.builtin", "tiny-lm", timeout=300).stdout
    folder = Path(out.strip().splitlines()[-1])
    assert folder.parent.parent == installed.root / "cache" and (folder / "READY").is_file()
    assert (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file()
