"""Reading a pipeline folder before it starts (core.pipeline.check_pipeline, what `workbench pipeline DIR` and the
TUI's folder picker validate with) and finding pipeline folders (pipeline_folders)."""
from __future__ import annotations

import pytest

from tests.conftest import RECIPES
from tests.core.test_cli import wb
from tests.core.test_pipeline_lifecycle import make_folder
from workbench.core import pipeline
from workbench.core.problems import BadInput


def test_a_good_folder_gives_its_stages_and_a_pipeline(runs_dir):
    checked = pipeline.check_pipeline(RECIPES / "demo", runs_dir)
    assert [(s.file.name, s.stage, s.model) for s in checked.stages] == [
        ("01-pretrain.toml", "pretrain", "builtin:tiny-lm"), ("02-sft.toml", "sft", "run:previous"),
        ("03-grpo.toml", "grpo", "run:previous")]
    assert checked.pipeline is not None and checked.pipeline.name == "demo"
    assert [r.stage for r in pipeline.load_pipeline(RECIPES / "demo", runs_dir).recipes] == ["pretrain", "sft", "grpo"]


def test_problems_of_every_stage_at_once_and_the_stages_still_listed(runs_dir, tmp_path):
    folder = make_folder(tmp_path / "p", ("one", 3), ("two", 3))
    first = folder / "01-one.toml"
    first.write_text(first.read_text().replace("builtin:tiny-lm", "run:previous"))
    (folder / "02-two.toml").write_text("[run\nbroken")
    checked = pipeline.check_pipeline(folder, runs_dir)
    assert checked.pipeline is None
    assert [(s.file.name, s.stage) for s in checked.stages] == [("01-one.toml", "grpo"), ("02-two.toml", "?")]
    messages = [p.message for p in checked.problems]
    assert "the first stage has no previous stage" in messages and len(messages) >= 2
    with pytest.raises(BadInput) as e:
        pipeline.load_pipeline(folder, runs_dir)
    assert e.value.problems == checked.problems
    proc = wb("--runs-dir", str(runs_dir), "pipeline", str(folder))  # the CLI says the same
    assert proc.returncode == 2 and "the first stage has no previous stage" in proc.stderr


@pytest.mark.parametrize("make,message", [(lambda d: d / "missing", "a pipeline is a folder of recipes"),
                                          (lambda d: d, "holds no *.toml recipes")])
def test_no_folder_or_no_recipes(runs_dir, tmp_path, make, message):
    checked = pipeline.check_pipeline(make(tmp_path), runs_dir)
    assert checked.stages == [] and [p.message for p in checked.problems] == [message]


def test_pipeline_folders_offers_the_shipped_pipelines_and_this_folders(tmp_path):
    make_folder(tmp_path / "mine", ("one", 3))
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "pyproject.toml").write_text("[project]\nname = 'x'\n")  # not a recipe
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "step.toml").write_text('[run]\nstage = "sft"\n')
    found = pipeline.pipeline_folders(tmp_path)
    assert ("Shipped pipelines", (RECIPES / "demo").resolve()) in found
    assert ("This folder", tmp_path.resolve()) in found and ("This folder", (tmp_path / "mine").resolve()) in found
    assert not any(f.name in ("notes", ".hidden") or f == RECIPES.resolve() for _, f in found)
    assert [s for s, _ in found] == sorted((s for s, _ in found), key=lambda s: s != "Shipped pipelines")
