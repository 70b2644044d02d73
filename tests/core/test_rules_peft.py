"""[peft] checks before launch (workbench/core/rules_peft.py): one case per rule, through `validate` on a shipped
recipe, as in test_validate_rules.py; QLoRA is refused where there is no CUDA GPU or no bitsandbytes."""
from __future__ import annotations

import json

import pytest

from tests.core.test_validate_rules import Case, build, check
from workbench.core import rules, rules_peft
from workbench.core.validate import validate_recipe

CASES: dict[str, list[Case]] = {
    "method_fits_stage": [
        Case("dpo", {"peft.method": "prompt"}, "peft.method", "virtual tokens"),
        Case("kto", {"peft.method": "prompt"}, "peft.method", "use one of: lora, dora, qlora, ia3, prefix"),
        Case("ppo", {"peft.method": "prompt"}, "peft.method", "cannot train a prompt tuning adapter"),
        Case("distill", {"peft.method": "prefix"}, "peft.method", "bypassing PeftModel.forward"),
        Case("best-of-k", {"peft.method": "lora"}, "peft.method", "trains nothing", "warning"),
    ],
    "qlora_needs_cuda": [
        Case("sft", {"peft.method": "qlora"}, "peft.method", "needs a CUDA GPU, and this machine shows none"),
        Case("sft", {"peft.method": "qlora"}, "peft.method", "pip install bitsandbytes", gpus=1,
             offline=("bitsandbytes",)),
        Case("sft", {"peft.method": "qlora", "train.use_cpu": True}, "train.use_cpu", "trains on the CPU", gpus=1),
    ],
    "prefix_without_checkpointing": [
        Case("sft", {"peft.method": "prefix", "train.gradient_checkpointing": True}, "train.gradient_checkpointing",
             "the first step fails"),
    ],
    "fields_of_the_method": [
        Case("sft", {"peft.method": "ia3", "peft.r": 16}, "peft.r", "does not apply to IA3", "warning"),
        Case("grpo", {"peft.method": "prompt", "peft.target_modules": ["q_proj"]}, "peft.target_modules",
             "it is for lora, dora, qlora, ia3", "warning"),
    ],
    "ia3_feedforward_subset": [
        Case("sft", {"peft.method": "ia3", "peft.target_modules": ["q_proj", "v_proj"],
                     "peft.feedforward_modules": ["down_proj"]}, "peft.feedforward_modules", "not among target"),
    ],
    "unmerged_adapter_models": [
        Case("sft", {"model.path": "run:R", "peft.method": "lora"}, "peft.method", 'method must be "prompt"'),
        Case("dpo", {"model.path": "run:R", "peft.method": "prefix"}, "model.path", "cannot load it"),
        Case("distill", {"model.teacher": "run:R"}, "model.teacher", "cannot serve as teacher"),
    ],
}


def prompt_run(runs_dir):
    """runs/R: a finished run whose final/ is a prompt-tuning adapter (what finalize.keep_unmerged leaves)."""
    final = runs_dir / "R" / "final"
    final.mkdir(parents=True)
    (runs_dir / "R" / "status.json").write_text(json.dumps({"state": "completed"}))
    (final / "adapter_config.json").write_text(json.dumps({"peft_type": "PROMPT_TUNING"}))
    (final / "adapter_model.safetensors").write_bytes(b"")
    (final / "tokenizer.json").write_text("{}")
    (final / "WORKBENCH_ADAPTER.json").write_text(json.dumps({"merged": False, "method": "prompt"}))


@pytest.mark.parametrize("rule", sorted(CASES))
def test_peft_rule(rule, tmp_path, monkeypatch):
    for i, case in enumerate(CASES[rule]):
        prompt_run(tmp_path / str(i) / "runs")
        check(case, tmp_path / str(i), monkeypatch)


def test_every_peft_rule_has_a_case():
    assert {r.__name__ for r in rules_peft.PEFT_RULES} == set(CASES)


@pytest.mark.parametrize("stage,method", [("sft", "lora"), ("sft", "dora"), ("sft", "ia3"), ("sft", "prompt"),
                                          ("sft", "prefix"), ("grpo", "prompt"), ("dpo", "prefix"),
                                          ("reward", "ia3"), ("sft", "qlora")])
def test_methods_a_stage_trains_validate_clean(stage, method, tmp_path, monkeypatch):
    monkeypatch.setattr(rules, "gpu_visible", lambda: True)  # qlora: a GPU box with bitsandbytes
    monkeypatch.setattr(rules, "installed", lambda m: True)
    r = build(Case(stage, {"peft.method": method}, "", ""), tmp_path)
    problems = [p for p in validate_recipe(r, tmp_path / "runs") if p.key.startswith("peft") or p.key == "model.path"]
    assert not problems, "\n".join(p.format() for p in problems)


def test_prompt_run_continues_with_its_own_method(tmp_path):
    prompt_run(tmp_path / "runs")
    r = build(Case("sft", {"model.path": "run:R", "peft.method": "prompt"}, "", ""), tmp_path)
    problems = [p for p in validate_recipe(r, tmp_path / "runs") if p.severity == "error"]
    assert not problems, "\n".join(p.format() for p in problems)
