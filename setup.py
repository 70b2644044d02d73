"""Packaging beyond what pyproject.toml can declare: the shipped recipes and data travel inside the package.

The repository keeps ``recipes/`` and ``assets/`` at the top (the README, the tests and the recipes' own relative
paths such as ``../assets/data/...`` use that layout). A wheel maps them into the package as
``workbench/_data/recipes`` and ``workbench/_data/assets``: siblings again, so every relative path inside a shipped
recipe resolves the same way from the installed copy. ``workbench.core.paths`` looks in the source checkout
first, then in the installed package data. Everything else (name, version, dependencies, scripts) lives in
pyproject.toml; ``packages`` is computed here because pyproject's ``packages.find`` cannot add mapped folders.
"""
from __future__ import annotations

import os
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
# package name -> folder in the repository (relative to this file)
MAPPED = {"workbench._data.recipes": "recipes", "workbench._data.assets": "assets"}


def _data_files(folder: str) -> list[str]:
    """Every file under a folder, relative to it; caches and dot-files left out."""
    root = HERE / folder
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
        for name in sorted(filenames):
            if not name.startswith(".") and not name.endswith((".pyc", ".pyo")):
                out.append(str((Path(dirpath) / name).relative_to(root)).replace(os.sep, "/"))
    return out


setup(
    packages=find_packages(include=["workbench", "workbench.*"]) + list(MAPPED),
    package_dir={name: folder for name, folder in MAPPED.items()},
    package_data={
        "workbench.tui": ["*.tcss"],  # the TUI's stylesheet (App.CSS_PATH): without it the TUI cannot start
        **{name: _data_files(folder) for name, folder in MAPPED.items()},
    },
    include_package_data=False,  # exactly the files above, whatever a MANIFEST.in or the VCS holds
)
