"""End to end: every shipped stage recipe through the real CLI and the real trl trainer on the tiny models."""
from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import ASSETS, RECIPES, workbench_cmd
from workbench.core import summary
from workbench.core.recipe import Recipe
from workbench.core.rundir import RunDir
from workbench.core.stages import STAGES

pytestmark = pytest.mark.e2e

# Every declared stage runs its shipped recipe here, and its metrics.jsonl must hold the keys its declaration
# (core/stages.py) charts and headlines: what the monitor and the summary lines show are keys real runs log.


# Each stage also runs an [eval] section (a few held-out prompts; the eval at step 0 and at the last step): its
# eval/* rows and held-out completions show for every stage. Where trl evaluates a loss on rows of the stage's own
# format (dpo, kto, reward), the rows are held out of [data] and eval_strategy = "steps" runs trl's evaluation too.
TRL_EVAL = {"dpo", "kto", "reward"}
# Stages other e2e tests train in full (test_grpo_cli.py, test_demo_learns.py): a few steps here, for their keys.
SHORT = {"grpo": 6, "sft": 10}


def short_sets(stage: str) -> list[str]:
    return [f"train.max_steps={SHORT[stage]}"] if stage in SHORT else []


def eval_sets(stage: str) -> list[str]:
    if stage == "best-of-k":
        return []
    r = Recipe.load(RECIPES / f"{stage}-tiny.toml")
    t = r.section("train")
    # ppo counts updates
    last = SHORT.get(stage) or t.get("max_steps") or t["total_episodes"] // t["per_device_train_batch_size"]
    sets = ["eval.max_prompts=4", "eval.k=2", "eval.max_new_tokens=24", f"eval.every_steps={last}"]
    if stage in TRL_EVAL:
        return sets + ['train.eval_strategy="steps"', f"train.eval_steps={last}"]
    return sets + [f'eval.data="{ASSETS / "arith-heldout.jsonl"}"']


def assert_eval_rows_and_samples(rd, stage, metrics):
    last = max(r["step"] for r in metrics if "event" not in r)
    if stage in TRL_EVAL:
        assert any("eval_loss" in r for r in metrics), "trl's own evaluation on the held-out rows"
    if stage == "reward":
        return  # a reward model generates nothing
    evals = [r for r in metrics if "eval/format_rate" in r]
    assert [r["step"] for r in evals] == [0, last], "at the start and at the last step"
    assert {"eval/accuracy", "eval/pass@k", "eval/maj@k", "eval/mean_length", "eval/prompts"} <= set(evals[-1])
    assert evals[-1]["eval/prompts"] == 4 and evals[-1]["eval/k"] == 2
    held = [s for s in rows(rd.samples_path) if s.get("eval")]
    assert len(held) == 2 * 4 * 2 and {s["step"] for s in held} == {0, last}
    assert all(isinstance(s["completion"], str) and s["prompt"] and set(s["rewards"]) == {"correctness", "format"}
               for s in held)


def run(runs_dir, recipe, *sets):
    args = ["--runs-dir", str(runs_dir), "run", str(recipe)]
    for s in sets:
        args += ["--set", s]
    proc = subprocess.run(workbench_cmd(*args), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    newest = max((p for p in runs_dir.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    return RunDir(newest)


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def assert_declared_keys_logged(rd, stage, keys):
    """Each declared chart has a series in this run (a needs_beta chart only when the run's beta > 0; the eval
    chart is every stage's and is checked by assert_eval_rows_and_samples), and the declared headline is exactly
    the summary's headline keys this run logged, in order."""
    decl = STAGES[stage]
    beta = Recipe.load(rd.recipe_path).get("train.beta", decl.trl_defaults.get("beta"))
    for chart in decl.charts:
        if chart.needs_beta and beta == 0:
            continue
        missing = [entry for entry in chart.keys if not any(k in keys for k in entry.split("|"))]
        assert not missing, f"{stage}: chart '{chart.title}' declares {missing}, the run logged {sorted(keys)}"
    if decl.groups:
        assert any(k.startswith("rewards/") and k.endswith("/mean") for k in keys), "the per-function rewards"
    assert [k for k in summary.HEADLINE_KEYS if k in keys] == list(decl.headline), sorted(keys)


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_recipe_completes_with_its_metrics(runs_dir, stage):
    rd = run(runs_dir, RECIPES / f"{stage}-tiny.toml", *short_sets(stage), *eval_sets(stage))
    assert rd.read_status()["state"] == "completed"
    metrics = rows(rd.metrics_path)
    keys = set().union(*(r for r in metrics if "event" not in r))
    assert_declared_keys_logged(rd, stage, keys)
    assert metrics[-1]["event"] == "train_end"
    if stage != "best-of-k":
        assert_eval_rows_and_samples(rd, stage, metrics)
    if stage in ("best-of-k", "distill-offline"):
        data = rows(rd.path / "dataset.jsonl")
        assert data and {"prompt", "completion"} <= set(data[0])
    else:
        assert (rd.final_model / "config.json").is_file()


def test_chain_reward_then_ppo_then_sft_on_curated_data(runs_dir, tmp_path):
    """run:ID chains stages: a trained reward model drives PPO; best-of-K output feeds SFT."""
    rm = run(runs_dir, RECIPES / "reward-tiny.toml", "train.max_steps=5")
    ppo = run(runs_dir, RECIPES / "ppo-tiny.toml", f'model.reward_model="run:{rm.id}"', "train.total_episodes=16")
    assert ppo.read_status()["state"] == "completed"
    assert f"run:{rm.id}" in ppo.recipe_path.read_text()
    bok = run(runs_dir, RECIPES / "best-of-k-tiny.toml", f'model.path="run:{ppo.id}"', "data.max_samples=8")
    sft = run(runs_dir, RECIPES / "sft-tiny.toml", f'data.path="{bok.path / "dataset.jsonl"}"',
              "train.max_steps=3", "train.assistant_only_loss=false")
    assert sft.read_status()["state"] == "completed"


def test_lora_run_final_model_is_merged_and_chains(runs_dir):
    lora = run(runs_dir, RECIPES / "sft-tiny.toml", 'peft.method="lora"', "train.max_steps=3")
    assert (lora.final_model / "config.json").is_file(), "merged: a plain model, not only an adapter"
    assert not (lora.final_model / "adapter_config.json").exists()
    nxt = run(runs_dir, RECIPES / "grpo-tiny.toml", f'model.path="run:{lora.id}"', "train.max_steps=2")
    assert nxt.read_status()["state"] == "completed"
