"""The shipped demo pipeline (recipes/demo: pretrain -> SFT -> GRPO on single-digit addition) learns what a user can
check with `workbench eval`: on the 20 held-out questions (assets/data/arith-heldout.jsonl, pairs that no stage
trains on) the GRPO model answers more of them right than its SFT base, at least 60 % with greedy decoding (maj@1),
in the reasoning format at least 95 % of the time. It runs the demo exactly as shipped (about 2 min on 2 quiet
cores); the pipeline's report ends with each stage's own held-out eval ([eval] in 02-sft.toml and 03-grpo.toml).

It is also the suite's pipeline-chaining test: the stages ran in order, each from the previous stage's final model
(run:previous resolved), and `ls` groups them under the pipeline. Test-time scaling (`eval --k`, pass@k, maj@k)
is covered on the tiny model in test_eval.py; the demo's k numbers in docs/evaluation.md came from
`workbench eval RUN --data assets/data/arith-heldout.jsonl --k 4 --baseline SFT_RUN`.
"""
from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import ASSETS, RECIPES, workbench_cmd
from workbench.core import pipeline
from workbench.core.rundir import RunDir

pytestmark = pytest.mark.e2e


def test_demo_pipeline_beats_sft_on_heldout_questions(runs_dir):
    proc = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "pipeline", str(RECIPES / "demo")),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ((pd, st),) = pipeline.list_pipelines(runs_dir)
    assert st["state"] == "completed" and f"pipeline {pd.id} completed" in proc.stdout
    chain = sorted((RunDir(p) for p in runs_dir.iterdir() if RunDir(p).exists()),
                   key=lambda r: r.read_status()["pipeline_step"])
    assert [s["run"] for s in st["stages"]] == [r.id for r in chain]
    assert [r.read_status()["stage"] for r in chain] == ["pretrain", "sft", "grpo"]
    assert all(r.read_status()["state"] == "completed" for r in chain)
    assert chain[1].read_status()["parent"] == chain[0].id
    assert f'"run:{chain[1].id}"' in chain[2].recipe_path.read_text(), "run:previous resolved to the SFT run"
    ls = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "ls", "--wide"), capture_output=True, text=True,
                        timeout=60)  # --wide: ids in full whatever $COLUMNS the test runner sets
    lines = ls.stdout.splitlines()
    assert lines[1].split()[:3] == [pd.id, "completed", "pipeline"] and "stage 3/3" in lines[1], ls.stdout
    assert [ln.split()[:2] for ln in lines[2:5]] == [["└", r.id] for r in chain], ls.stdout
    runs = {r.read_status()["stage"]: r for r in chain}
    report = proc.stdout[proc.stdout.index("held-out eval at the end of each stage:"):]
    assert "demo-sft  " in report and "demo-grpo  " in report and "(20 prompts, step 150)" in report, report

    # Greedy answers of both models on the same held-out prompts; no --name: the two final models' files differ.
    heldout = str(ASSETS / "arith-heldout.jsonl")
    proc = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "eval", runs["grpo"].id, "--data", heldout,
                                        "--max-new-tokens", "72", "--baseline", runs["sft"].id),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    evals = runs["grpo"].path / "evals"
    grpo = json.loads((evals / "final-arith-heldout.json").read_text())["summary"]
    sft = json.loads((evals / f"{runs['sft'].id}-final-arith-heldout.json").read_text())["summary"]
    answers = [json.loads(line)["completion"] for line in (evals / "final-arith-heldout.jsonl").read_text().splitlines()]
    said = f"held-out accuracy SFT {sft['accuracy']:.0%} -> GRPO {grpo['accuracy']:.0%}; GRPO answers: {answers}"
    print(said)
    assert grpo["n_scored"] == sft["n_scored"] == 20
    assert grpo["accuracy"] > sft["accuracy"], "GRPO beats its SFT base: " + said
    assert grpo["accuracy"] >= 0.6, said
    assert grpo["format_rate"] >= 0.95, f"format rate {grpo['format_rate']:.0%}: {answers}"
    # the training child's own end-of-run eval agrees with `workbench eval` (same prompts, greedy)
    last = [json.loads(line) for line in runs["grpo"].metrics_path.read_text().splitlines() if "eval/accuracy" in line]
    assert last[-1]["eval/accuracy"] == pytest.approx(grpo["accuracy"], abs=0.1)  # batching may flip a near tie
