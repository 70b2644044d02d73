"""Consent before user Python code runs: asked once per file content, again after an edit."""
from __future__ import annotations

from tests.conftest import RECIPES
from workbench.core import trust
from workbench.core.recipe import Recipe


def recipe_with(reward_file) -> Recipe:
    r = Recipe.load(RECIPES / "grpo-tiny.toml")
    r.set("rewards.funcs", ["format", f"{reward_file}:short"])
    return r


def test_approval_is_per_file_content(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    f = tmp_path / "r.py"
    f.write_text("def short(completions, **kwargs):\n    return [0.0 for _ in completions]\n")
    r = recipe_with(f)
    assert trust.unapproved(r) == [f]
    assert "def short" in trust.review_text([f])
    trust.approve([f])
    assert trust.unapproved(r) == []
    f.write_text(f.read_text() + "import os\n")  # edited: ask again
    assert trust.unapproved(r) == [f]


def test_builtin_rewards_need_no_consent():
    assert trust.unapproved(Recipe.load(RECIPES / "grpo-tiny.toml")) == []
