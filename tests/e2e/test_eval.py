"""End to end: held-out evaluation with the real trainers and the real CLI on the tiny models.

- sft with [eval] data in the sft format: the generation eval (prompts and answers taken from the conversations)
  and trl's own evaluation (eval_strategy = "steps") on the same held-out file;
- grpo with [eval] rows held out of [data]: eval rows at 0, every_steps and the end, held-out completions in
  samples.jsonl next to the training batch's;
- `workbench eval` on the finished sft run with --k 4 and --baseline builtin:tiny-lm (both printed, with the
  difference; results in RUN_DIR/evals/, shown by `workbench show`), and on one of its checkpoints.
(The other stages run an [eval] section in test_stages.py.)
"""
from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import ASSETS, RECIPES, workbench_cmd
from tests.e2e.test_stages import rows, run

pytestmark = pytest.mark.e2e
HELDOUT = ASSETS / "arith-heldout.jsonl"


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("eval") / "runs"
    runs_dir.mkdir()
    rd = run(runs_dir, RECIPES / "sft-tiny.toml", "train.max_steps=10", "train.save_steps=10",
             'train.eval_strategy="steps"', "train.eval_steps=10", f'eval.data="{ASSETS / "format-sft.jsonl"}"',
             "eval.max_prompts=4", "eval.k=2", "eval.max_new_tokens=24", "eval.every_steps=10")
    return runs_dir, rd


def test_sft_eval_section_runs_generation_and_trl_eval(sft_run):
    _, rd = sft_run
    assert rd.read_status()["state"] == "completed"
    metrics = rows(rd.metrics_path)
    evals = [r for r in metrics if "eval/accuracy" in r]
    assert [r["step"] for r in evals] == [0, 10]
    assert evals[-1]["eval/prompts"] == 4 and 0 <= evals[-1]["eval/accuracy"] <= 1
    assert any("eval_loss" in r for r in metrics), "trl's evaluation on the held-out sft rows"
    held = rows(rd.samples_path)
    assert len(held) == 16 and all(s["eval"] and s["expected"] == "5" for s in held if s["group"] == 0)


def test_grpo_eval_section_holds_out_rows_of_its_data(runs_dir):
    rd = run(runs_dir, RECIPES / "grpo-tiny.toml", "train.max_steps=4", "train.save_steps=4", "eval.max_prompts=4",
             "eval.k=2", "eval.max_new_tokens=24", "eval.every_steps=2")
    assert rd.read_status()["state"] == "completed"
    assert "holds out the last 4 of 160 rows" in rd.stdout_path.read_text()
    assert [r["step"] for r in rows(rd.metrics_path) if "eval/maj@k" in r] == [0, 2, 4]
    samples = rows(rd.samples_path)
    held, trained = [s for s in samples if s.get("eval")], [s for s in samples if not s.get("eval")]
    assert len(held) == 3 * 4 * 2 and trained, "held-out completions beside the training batch's"
    held_prompts = {json.dumps(s["prompt"]) for s in held}
    assert not held_prompts & {s["prompt"] for s in trained}, "held-out prompts are not trained on"


def test_workbench_eval_with_a_baseline_prints_both(sft_run):
    runs_dir, rd = sft_run
    proc = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "eval", rd.id, "--data", str(HELDOUT),
                                        "--k", "4", "--max-new-tokens", "24", "--baseline", "builtin:tiny-lm"),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    print(out)
    assert f"{rd.id}/final on arith-heldout.jsonl: 20 prompts x 4 samples, temperature 0.7" in out
    assert "builtin:tiny-lm on arith-heldout.jsonl: 20 prompts x 4 samples" in out
    table = [line.split() for line in out.splitlines()]
    head = next(i for i, t in enumerate(table) if t[:2] == [f"{rd.id}/final", "builtin:tiny-lm"])
    body = table[head + 1:table.index([], head)]
    assert [t[0] for t in body] == ["accuracy", "format", "pass@4", "maj@4", "length", "truncated", "pass@1",
                                    "pass@2", "prompts"]
    assert body[-1][1:] == ["20", "20"] and all(len(t) == 4 for t in body[:-1]), "both values and the difference"
    for name, value in json.loads((rd.path / "evals" / "final-arith-heldout.json").read_text())["summary"].items():
        if name == "accuracy":
            assert table[head + 1][1] == f"{value:.3f}"
    records = rows(rd.path / "evals" / "final-arith-heldout.jsonl")
    assert len(records) == 80 and {"prompt", "completion", "answer", "expected", "correct", "tokens"} <= set(records[0])
    assert (rd.path / "evals" / "tiny-lm-arith-heldout.json").is_file()
    show = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "show", rd.id), capture_output=True, text=True,
                          timeout=60)
    assert show.returncode == 0, show.stderr
    lines = show.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("evals"))
    assert lines[at + 1].split()[:4] == ["EVAL", "MODEL", "PROMPTS", "K"]
    assert {lines[at + 2].split()[0], lines[at + 3].split()[0]} == {"final-arith-heldout", "tiny-lm-arith-heldout"}


def test_workbench_eval_of_a_checkpoint(sft_run):
    runs_dir, rd = sft_run
    proc = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "eval", f"{rd.id}/checkpoint-10", "--data",
                                        str(HELDOUT), "--max-prompts", "3", "--max-new-tokens", "16"),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"{rd.id}/checkpoint-10 on arith-heldout.jsonl: 3 prompts x 1 samples, temperature 0" in proc.stdout
    assert len(rows(rd.path / "evals" / "checkpoint-10-arith-heldout.jsonl")) == 3
