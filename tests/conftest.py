"""Shared test set-up: caches inside the project (never the user's home), offline hub, helpers."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache"
os.environ.setdefault("WORKBENCH_CACHE", str(CACHE / "workbench"))
os.environ.setdefault("HF_HOME", str(CACHE / "huggingface"))
os.environ.setdefault("HF_DATASETS_CACHE", str(CACHE / "huggingface" / "datasets"))
os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(CACHE / "torch_extensions"))
os.environ["HF_HUB_OFFLINE"] = "1"  # no test ever reaches for the network
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

FIXTURES = Path(__file__).resolve().parent / "fixtures"
RECIPES = ROOT / "recipes"
ASSETS = ROOT / "assets" / "data"


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    d = tmp_path / "runs"
    d.mkdir()
    return d


def workbench_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "workbench", *args]
