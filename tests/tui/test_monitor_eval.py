"""The monitor with an [eval] section's output: the held-out eval chart appears with eval/* rows (any stage), and
the Samples tab shows the held-out completions of stages that sample nothing themselves."""
from __future__ import annotations

import json

from tests.tui.conftest import make_run
from tests.tui.screen_text import screen_text, wait_for
from tests.tui.test_monitor_screen import SIZE, open_monitor
from workbench.tui.widgets.charts import MetricChart


def add_eval(d, steps=(0, 4)):
    with open(d / "metrics.jsonl", "a") as f:
        for s in steps:
            f.write(json.dumps({"step": s, "time": 1.0 + s, "eval/accuracy": 0.1 * s, "eval/format_rate": 0.2 * s,
                                "eval/pass@k": 0.2, "eval/maj@k": 0.1, "eval/mean_length": 20.0,
                                "eval/prompts": 2, "eval/k": 2}) + "\n")
    rows = [{"step": s, "group": g, "index": g * 2 + i, "prompt": [{"role": "user", "content": f"What is {g} + 1?"}],
             "completion": "<reasoning>r</reasoning><answer>1</answer>" if i == 0 else "junk",
             "rewards": {"correctness": 2.0 if g == 0 and i == 0 else 0.0, "format": 1.0 if i == 0 else 0.0},
             "reward": 0.0, "advantage": None, "eval": True, "answer": "1", "expected": str(g + 1)}
            for s in steps for g in range(2) for i in range(2)]
    (d / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


async def test_eval_chart_and_held_out_completions_of_an_sft_run(runs_dir, app_factory):
    d = make_run(runs_dir, "20260101-000000-s", stage="sft", steps=4, max_steps=4)
    add_eval(d)
    app = app_factory()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_monitor(app, pilot, d)
        await wait_for(pilot, lambda: screen.query("#chart-eval"), "the eval chart")
        chart = screen.query_one("#chart-eval", MetricChart)
        assert chart.title == "held-out eval"
        assert chart.series_keys() == ["eval/accuracy", "eval/format_rate", "eval/pass@k", "eval/maj@k"]
        assert [c.title for c in screen.query(MetricChart)][:3] == ["loss", "token accuracy", "learning rate"]
        await pilot.press("2")
        await pilot.pause(0.2)
        text = screen_text(app)
        assert "step 4  (2/2)" in text and "4/4 completions" in text
        assert "eval prompt 0: What is 0 + 1?   expected 1" in text and "eval prompt 1: What is 1 + 1?" in text
        assert "correctness 2" in text and "<answer>1</answer>" in text


async def test_no_eval_chart_without_eval_rows_and_a_hint_where_samples_would_be(runs_dir, app_factory):
    d = make_run(runs_dir, "20260101-000000-k", stage="sft", steps=3, max_steps=3, samples=False)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_monitor(app, pilot, d)
        assert "held-out eval" not in [c.title for c in screen.query(MetricChart)]  # no [eval], no eval rows
        await pilot.press("2")
        await pilot.pause(0.2)
        text = " ".join(screen_text(app).split())
        assert "an [eval] section in the recipe shows" in text, text
