"""Model and dataset discovery for the editor's pickers (file system only)."""
from __future__ import annotations

import hashlib
import json
import os

import pytest

from tests.conftest import ASSETS
from workbench.core import discovery, estimate, models
from workbench.core.models import builtin_config
from workbench.core.recipe import Recipe
from workbench.core.validate import validate_recipe


def test_hub_cache_models_need_a_snapshot(tmp_path):
    (tmp_path / "models--org--good" / "snapshots" / "abc").mkdir(parents=True)
    (tmp_path / "models--org--empty" / "snapshots").mkdir(parents=True)
    (tmp_path / "datasets--org--data" / "snapshots" / "abc").mkdir(parents=True)
    found = discovery.hub_cache_models(tmp_path)
    assert [c.value for c in found] == ["org/good"]


def test_hub_cache_default_follows_hf_hub_cache(tmp_path, monkeypatch):
    (tmp_path / "models--a--b" / "snapshots" / "x").mkdir(parents=True)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    assert [c.value for c in discovery.hub_cache_models()] == ["a/b"]


def test_missing_folders_find_nothing(tmp_path):
    assert discovery.hub_cache_models(tmp_path / "nope") == []
    assert discovery.run_final_models(tmp_path / "nope") == []
    assert discovery.local_model_folders([tmp_path / "nope"]) == []


def test_run_final_models_newest_first(tmp_path):
    for rid, final in (("20260101-a", True), ("20260102-b", True), ("20260103-c", False)):
        d = tmp_path / rid
        d.mkdir()
        (d / "status.json").write_text("{}")
        if final:
            (d / "final").mkdir()
    assert [c.value for c in discovery.run_final_models(tmp_path)] == ["run:20260102-b", "run:20260101-a"]


def test_local_model_folders_and_remote_code(tmp_path):
    m = tmp_path / "models" / "mine"
    m.mkdir(parents=True)
    (m / "config.json").write_text(json.dumps({"auto_map": {"AutoModel": "x.Y"}}))
    (tmp_path / ".hidden" / "m").mkdir(parents=True)
    (tmp_path / ".hidden" / "m" / "config.json").write_text("{}")
    found = discovery.local_model_folders([tmp_path])
    assert [c.value for c in found] == [str(m.resolve())]
    assert discovery.needs_remote_code(m)
    assert not discovery.needs_remote_code(tmp_path)


def test_model_choices_start_with_builtins(tmp_path):
    values = [c.value for c in discovery.model_choices(tmp_path, roots=[])]
    assert values[0] == "builtin:tiny-lm"


def test_dataset_files_include_shipped_assets_and_extra_roots(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mine.csv").write_text("prompt\nhi\n")
    (tmp_path / "notes.txt").write_text("x")
    values = [c.value for c in discovery.dataset_files([tmp_path])]
    assert any(v.endswith("assets/data/arith-prompts.jsonl") for v in values)
    assert str((tmp_path / "data" / "mine.csv").resolve()) in values
    assert not any(v.endswith("notes.txt") for v in values)
    assert len(values) == len(set(values))


# -- a real hub cache, built in the test: save_pretrained into models--ORG--NAME/{blobs,snapshots/<rev>,refs/main} --
def save_tiny(folder, chat: bool, hidden: int = 64):
    """A tiny Qwen2 causal LM and a real tokenizer, written by save_pretrained (weights, config, tokenizer files)."""
    from tokenizers import Tokenizer, models as tok_models
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    cfg = dict(builtin_config("tiny-lm"), hidden_size=hidden, intermediate_size=2 * hidden)
    model = Qwen2ForCausalLM(Qwen2Config(**cfg))
    model.save_pretrained(folder)
    vocab = {f"t{i}": i for i in range(cfg["vocab_size"])}
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(tok_models.WordLevel(vocab, unk_token="t0")),
                                  unk_token="t0", chat_template="{{ messages[0]['content'] }}" if chat else None)
    tok.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def put_in_hub_cache(cache, repo_id: str, folder, revision: str, main: bool = True):
    """The layout huggingface_hub writes: file contents in blobs/<sha256>, snapshots/<rev>/<name> -> the blob."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snap = repo / "snapshots" / revision
    snap.mkdir(parents=True)
    for f in sorted(folder.iterdir()):
        data = f.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snap / f.name).symlink_to(os.path.relpath(blob, snap))
    if main:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text(revision)
    return snap


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


def test_picker_lists_the_hub_cache_as_scan_cache_dir_sees_it(hub_cache, tmp_path):
    from huggingface_hub import scan_cache_dir

    params = save_tiny(tmp_path / "chat", chat=True)
    wide = save_tiny(tmp_path / "wide", chat=False, hidden=128)
    put_in_hub_cache(hub_cache, "acme/tiny-chat", tmp_path / "chat", "a" * 40)
    old = put_in_hub_cache(hub_cache, "acme/tiny-base", tmp_path / "chat", "b" * 40, main=False)
    main = put_in_hub_cache(hub_cache, "acme/tiny-base", tmp_path / "wide", "c" * 40)
    os.utime(old, (2e9, 2e9))  # the newest snapshot is not the one refs/main names

    scanned = scan_cache_dir(hub_cache)
    assert not scanned.warnings and {r.repo_id for r in scanned.repos} == {"acme/tiny-chat", "acme/tiny-base"}
    found = {c.value: c for c in discovery.model_choices(tmp_path / "no-runs", roots=[]) if c.kind == "hub"}
    assert list(found) == ["acme/tiny-base", "acme/tiny-chat"]
    chat, base = found["acme/tiny-chat"].info, found["acme/tiny-base"].info
    assert (chat.params, chat.architecture, chat.chat_template) == (params, "Qwen2ForCausalLM", True)
    assert (base.params, base.chat_template) == (wide, False), "refs/main's revision, not the newest snapshot"
    size = next(r.size_on_disk for r in scanned.repos if r.repo_id == "acme/tiny-chat")
    assert chat.size == size > 100_000
    label = found["acme/tiny-chat"].label
    assert label.startswith("acme/tiny-chat  (hub cache: ") and "Qwen2ForCausalLM" in label and \
        "chat template" in label and "KB" in label and "params" in label
    assert "no chat template" in found["acme/tiny-base"].label

    # The one lookup the rest of the project uses agrees with the scan: validation, the estimator, the rules.
    assert discovery.hub_snapshot("acme/tiny-base") == main
    assert models.hub_cached("acme/tiny-chat") is not None and models.hub_cached("acme/nothing") is None
    recipe = Recipe.parse(f'[run]\nstage = "sft"\n[model]\npath = "acme/tiny-base"\n[data]\npath = '
                          f'"{ASSETS / "format-sft.jsonl"}"\n')
    assert estimate.recipe_shape(recipe, None).params == wide
    problems = validate_recipe(recipe, tmp_path)
    model_problems = [p for p in problems if p.key == "model.path"]
    assert any("no chat template" in p.message for p in model_problems), model_problems
    assert not any("cache" in p.message for p in model_problems)


def test_runs_and_local_folders_are_described_too(tmp_path):
    pytest.importorskip("transformers")
    params = save_tiny(tmp_path / "models" / "mine", chat=True)
    run = tmp_path / "runs" / "20260101-000000-sft"
    (run / "final").mkdir(parents=True)
    (run / "status.json").write_text("{}")
    (run / "final" / "adapter_config.json").write_text(json.dumps(
        {"peft_type": "PROMPT_TUNING", "base_model_name_or_path": str(tmp_path / "models" / "mine")}))
    local = discovery.local_model_folders([tmp_path / "models"])
    assert [c.info.params for c in local] == [params] and "chat template" in local[0].label
    (runs,) = discovery.run_final_models(tmp_path / "runs")
    assert runs.info.architecture == "prompt_tuning adapter on mine"
