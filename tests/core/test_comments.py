"""Template comments an edit made false are refreshed or dropped (the user's are kept), templates name their file,
stage switches map the recipe, recent files are remembered."""
from __future__ import annotations

import shutil

import pytest

from tests.conftest import ASSETS, RECIPES
from workbench.core import recent, restage
from workbench.core.recipe import Recipe
from workbench.core.templates import template


def comment_of(recipe: Recipe, key: str) -> str:
    line = recipe.dumps().splitlines()[recipe.line_of(key) - 1]
    return line.split("#", 1)[1].strip() if "#" in line else ""


@pytest.fixture
def grpo(tmp_path) -> Recipe:
    p = tmp_path / "g.toml"
    shutil.copy(RECIPES / "grpo-tiny.toml", p)
    return Recipe.load(p)


def test_an_untouched_recipe_saves_byte_for_byte(grpo):
    grpo.set("train.beta", 0.04)  # an edit that changes nothing
    assert grpo.dumps() == (RECIPES / "grpo-tiny.toml").read_text()


def test_batch_arithmetic_follows_both_keys(grpo):
    grpo.set("train.num_generations", 2)
    assert comment_of(grpo, "train.per_device_train_batch_size") == "counts completions: 16 / 2 = 8 prompts per step"
    grpo.set("train.per_device_train_batch_size", 12)
    assert comment_of(grpo, "train.per_device_train_batch_size") == "counts completions: 12 / 2 = 6 prompts per step"
    grpo.set("train.num_generations", 5)
    assert "not a whole number" in comment_of(grpo, "train.per_device_train_batch_size")
    grpo.unset("train.num_generations")
    assert comment_of(grpo, "train.per_device_train_batch_size") == ""
    assert comment_of(grpo, "train.beta").startswith("KL coefficient")  # true whatever the value: kept


def test_value_bound_comments_are_refreshed_or_dropped(grpo):
    grpo.set("peft.method", "lora")
    assert comment_of(grpo, "peft.method").startswith('or "full"')
    grpo.set("peft.method", "full")
    assert comment_of(grpo, "peft.method") == 'or "lora" (r, alpha below)'
    grpo.set("data.path", "../elsewhere/prompts.jsonl")
    assert comment_of(grpo, "data.path") == "relative to this file"
    grpo.set("data.path", "/data/prompts.jsonl")
    assert comment_of(grpo, "data.path") == ""


def test_user_comments_are_kept_when_the_value_changes(tmp_path):
    p = tmp_path / "u.toml"
    p.write_text('[run]\nstage = "grpo"\n# about the model\n[model]\npath = "builtin:tiny-lm"  # my pick\n'
                 '[peft]\nmethod = "full"  # or lora, someday\n')
    r = Recipe.load(p)
    r.set("model.path", "/models/x")
    r.set("peft.method", "lora")
    text = r.dumps()
    assert "# about the model" in text and "# my pick" in text and "# or lora, someday" in text


def test_template_names_its_output_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = template("dpo", str(tmp_path / "dpo.toml"))
    assert "#   workbench run dpo.toml" in text and "recipes/dpo-tiny.toml" not in text
    assert "#   workbench run <this file>" in template("dpo")
    grpo = template("grpo")
    assert "relative to this file" not in grpo and str(ASSETS / "arith-prompts.jsonl") in grpo
    assert Recipe.parse(grpo).get("data.path") == str(ASSETS / "arith-prompts.jsonl")


def test_stage_switch_drops_what_the_new_config_lacks(tmp_path):
    from workbench.core import schema

    p = tmp_path / "d.toml"
    shutil.copy(RECIPES / "dpo-tiny.toml", p)
    r = Recipe.load(p)
    notices = restage.switch_stage(r, "sft", schema.stage_fields("trl:SFTConfig"))
    assert r.stage == "sft" and r.get("train.beta") is None and r.get("train.loss_type") is None
    assert notices == ["dropped train.beta (not in SFTConfig), train.loss_type (SFTConfig wants a string)"]
    assert r.get("train.max_length") == 96 and "# SFTConfig fields" in r.dumps()
    r.set("data.path", str(ASSETS / "prefs.jsonl"))
    assert "prefs.jsonl has columns prompt, chosen, rejected, but sft needs" in restage.data_fit(r, "sft")
    assert restage.data_fit(r, "dpo") is None


def test_stage_switch_adds_what_the_new_stage_needs():
    from workbench.core import schema

    r = Recipe.load(RECIPES / "sft-tiny.toml")
    notices = restage.switch_stage(r, "grpo", schema.stage_fields("trl:GRPOConfig"))
    assert r.get("rewards.funcs") == ["format", "correctness"]
    assert any("added from the grpo template: rewards.funcs" in n for n in notices)
    assert any("train.assistant_only_loss (not in GRPOConfig)" in n for n in notices)
    r = Recipe.load(RECIPES / "grpo-tiny.toml")
    notices = restage.switch_stage(r, "best-of-k", {})
    assert r.section("train") == {} and "dropped [train] (best-of-k trains nothing)" in notices[0]


def test_recent_files_most_recent_first(tmp_path, monkeypatch):
    monkeypatch.setattr(recent, "recent_path", lambda: tmp_path / "recent.json")
    assert recent.recent_files() == []
    for name in ("a.toml", "b.toml", "a.toml"):
        recent.remember(tmp_path / name)
    assert recent.recent_files() == [tmp_path / "a.toml", tmp_path / "b.toml"]
    recent.forget(tmp_path / "a.toml")
    assert recent.recent_files() == [tmp_path / "b.toml"]
    (tmp_path / "recent.json").write_text("not json")
    assert recent.recent_files() == []
