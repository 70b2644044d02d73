"""Model and dataset discovery for the editor's pickers (file system only)."""
from __future__ import annotations

import json

from workbench.core import discovery


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
