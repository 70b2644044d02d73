"""UI-free pieces of the TUI: downsampling, sample filters and rendering, the log tail, form value conversion,
and the rule that the TUI never imports the training stack."""
from __future__ import annotations

import json
import subprocess
import sys
import time

from workbench.core.recipe import Recipe
from workbench.tui.widgets.charts import downsample
from workbench.tui.widgets.logtail import TextTail
from workbench.tui.widgets.recipe_form import batch_note, from_text, to_text
from workbench.tui.widgets.samples import SampleIndex, apply_filter, highlight, prompt_text, render_step
from tests.conftest import RECIPES

HEAVY = ("torch", "transformers", "trl", "peft", "datasets", "deepspeed", "accelerate")


def test_downsample_keeps_extremes_and_bounds_the_points():
    n = 1_000_000
    xs = list(range(n))
    ys = [0.0] * n
    ys[123_456] = 9.0  # a single spike must survive
    ys[987_654] = -5.0
    t = time.perf_counter()
    ox, oy = downsample(xs, ys, 70)
    assert time.perf_counter() - t < 1.0
    assert len(ox) <= 140 and ox == sorted(ox)
    assert max(oy) == 9.0 and min(oy) == -5.0


def test_downsample_passes_short_series_through():
    assert downsample([1, 2, 3], [4, 5, 6], 70) == ([1, 2, 3], [4, 5, 6])


def _sample(step, good, group=0):
    return {"step": step, "group": group, "prompt": [{"role": "system", "content": "s"},
                                                      {"role": "user", "content": "What is 1 + 1?"}],
            "completion": "<reasoning>r</reasoning><answer>2</answer>" if good else "nope [b]",
            "rewards": {"format": float(good), "correctness": 2.0 * good}, "reward": 3.0 * good, "advantage": 0.5}


def test_sample_index_reads_incrementally_by_step(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_text(json.dumps(_sample(1, True)) + "\n")
    index = SampleIndex(path)
    assert index.read_new() and index.steps == [1]
    assert not index.read_new()
    with open(path, "a") as f:
        f.write(json.dumps(_sample(2, False)) + "\n" + '{"step": 3')
    assert index.read_new() and index.steps == [1, 2]


def test_filters_and_prompt_text():
    rows = [_sample(1, True), _sample(1, False)]
    assert len(apply_filter(rows, "all")) == 2
    assert apply_filter(rows, "format failures") == [rows[1]]
    assert apply_filter(rows, "correct only") == [rows[0]]
    assert prompt_text(rows[0]["prompt"]) == "What is 1 + 1?"
    assert prompt_text("system\nx\nuser\nWhat is 2?\nassistant\n") == "What is 2?"


def test_highlight_styles_parts_and_never_parses_markup():
    text = highlight("a [red]b<reasoning>why</reasoning><answer>4</answer>\x01")
    assert text.plain == "a [red]b<reasoning>why</reasoning><answer>4</answer>·"
    styles = {text.plain[s.start:s.end]: str(s.style) for s in text.spans}
    assert styles["<answer>4</answer>"] == "bold green"
    assert "italic" in styles["<reasoning>why</reasoning>"]
    assert render_step([_sample(1, True, 0), _sample(1, False, 1)]) is not None


def test_text_tail_is_incremental_and_collapses_progress_bars(tmp_path):
    path = tmp_path / "stdout.log"
    tail = TextTail(path)
    assert tail.read_new() == []
    path.write_text("one\nbar 1%\rbar 50%\rbar 100%\npart")
    assert tail.read_new() == ["one", "bar 100%"]
    with open(path, "a") as f:
        f.write("ial\n")
    assert tail.read_new() == ["partial"]


def test_form_values_round_trip():
    assert from_text("train.learning_rate", "1e-4") == 1e-4
    assert from_text("train.beta", "") is None
    assert from_text("model.path", "123") == "123"  # string keys stay strings
    assert from_text("rewards.funcs", '["format"]') == ["format"]
    assert to_text(["a", "b"]) == '["a", "b"]'
    assert to_text(True) == "true"


def test_batch_note_shows_the_arithmetic():
    recipe = Recipe.load(RECIPES / "grpo-tiny.toml")
    assert "= 16 completions = 4 prompts x 4 generations" in batch_note(recipe, {})
    recipe.set("train.num_generations", 3)
    assert "not divisible" in batch_note(recipe, {})


def test_the_tui_never_imports_the_training_stack():
    code = ("import sys, workbench.tui.app, workbench.tui.screens.editor, workbench.tui.screens.monitor; "
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_stage_gets_its_declared_charts_first():
    """The monitor lays out each stage's declared charts (core/stages.py) first, each with a series to draw when
    the run logs the declared keys (tests/e2e/test_stages.py checks real runs log them)."""
    from workbench.core.metrics import MetricsHistory
    from workbench.core.stages import STAGES
    from workbench.tui.screens.monitor import chart_specs

    for stage, decl in STAGES.items():
        logged = [entry.split("|")[0] for chart in decl.charts for entry in chart.keys]
        h = MetricsHistory()
        h.add([{"step": 1, **{k: 1.0 for k in logged}}])
        specs = chart_specs(stage, h)
        assert [title for title, _ in specs] == [c.title for c in decl.charts]
        for title, spec in specs:
            present = [k for entry in spec for k in entry.split("|") if k in h.series]
            assert present, f"{stage}: chart '{title}' would be empty"
