"""The rules trl/transformers enforce at trainer start, checked by `validate` (workbench/core/rules*.py).

One case per rule: the recipe (a shipped one with a few keys changed), the key the Problem must point at and a
phrase of what it says. A sample of rules is shown to be real: one child process imports trl once and builds
the real config classes (and a few trainer helpers) with the same values, which must raise.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import RECIPES, workbench_cmd
from workbench.core import rules, rules_stages
from workbench.core.recipe import Recipe
from workbench.core.validate import validate_recipe

UNSET = object()
REAL_INSTALLED = rules.installed
GOOD_PROMPT = {"prompt": "What is 1 + 1?", "answer": "2"}
CHAT = [{"role": "user", "content": "What is 1 + 1?"}]
ANSWER = [{"role": "assistant", "content": "2"}]


@dataclass
class Case:
    recipe: str  # recipes/<recipe>-tiny.toml
    sets: dict  # dotted key -> value (UNSET removes it)
    key: str  # the Problem's key
    phrase: str  # in its message
    severity: str = "error"
    data: list | str | None = None  # rows (or raw text) for a data file that replaces data.path
    suffix: str = ".jsonl"
    offline: tuple = field(default=())  # packages to pretend are not installed
    gpus: int = 0  # GPUs this machine pretends to show


def lora(*modules):
    return {"peft.method": "lora", "peft.target_modules": list(modules)}


RULE_CASES: dict[str, list[Case]] = {
    # -- TrainingArguments / Trainer (rules.py) --
    "eval_needs_a_dataset": [Case("sft", {"train.eval_strategy": "steps"}, "train.eval_strategy",
                                  "the workbench passes no eval dataset")],
    "load_best_needs_eval": [Case("sft", {"train.load_best_model_at_end": True}, "train.load_best_model_at_end",
                                  "needs an evaluation at every save"),
                             Case("sft", {"train.load_best_model_at_end": True, "eval.max_prompts": 4,
                                          "train.eval_strategy": "epoch"}, "train.load_best_model_at_end",
                                  "needs eval_strategy = save_strategy")],
    "save_best_needs_eval": [Case("sft", {"train.save_strategy": "best"}, "train.save_strategy",
                                  "no checkpoint would ever be written"),
                             Case("sft", {"train.save_strategy": "best", "eval.max_prompts": 4,
                                          "train.eval_strategy": "steps", "train.eval_steps": 5},
                                  "train.metric_for_best_model", "needs metric_for_best_model")],
    "scheduler_needs_eval": [Case("sft", {"train.lr_scheduler_type": "reduce_lr_on_plateau"},
                                  "train.lr_scheduler_type", "steps on evaluation results")],
    "scheduler_arguments": [
        Case("sft", {"train.lr_scheduler_type": "cosine_with_min_lr"}, "train.lr_scheduler_type",
             "neither min_lr nor min_lr_rate"),
        Case("sft", {"train.lr_scheduler_type": "polynomial", "train.learning_rate": 1e-8}, "train.learning_rate",
             "not below learning_rate"),
    ],
    "whole_steps": [Case("sft", {"train.save_steps": 2.5}, "train.save_steps", "must be a whole number")],
    "one_precision": [
        Case("sft", {"train.bf16": True, "train.fp16": True}, "train.bf16", "bf16 and fp16 are both on"),
        Case("sft", {"launch.mixed_precision": "bf16", "train.fp16": True}, "train.fp16",
             'launch.mixed_precision = "bf16" turns on bf16'),
    ],
    "bf16_needs_a_device": [Case("sft", {"train.use_cpu": False, "train.bf16": True}, "train.use_cpu",
                                 "needs a GPU, and this machine shows none", "warning")],
    "prefetch_needs_workers": [Case("sft", {"train.dataloader_prefetch_factor": 2},
                                    "train.dataloader_prefetch_factor", "dataloader_num_workers is 0")],
    "optimizer_needs": [
        Case("sft", {"train.optim": "adamw_bnb_8bit"}, "train.optim", "needs the bitsandbytes package",
             offline=("bitsandbytes",)),
        Case("sft", {"train.optim": "galore_adamw"}, "train.optim", "needs optim_target_modules",
             offline=("galore_torch",)),
    ],
    "reporters_installed": [
        Case("sft", {"train.report_to": "wandbb"}, "train.report_to", "not a logger transformers knows"),
        Case("sft", {"train.report_to": ["wandb"]}, "train.report_to", "needs the wandb package",
             offline=("wandb",)),
    ],
    "kernels_installed": [Case("grpo", {"train.use_vllm": True}, "train.use_vllm", "needs the vllm package",
                               offline=("vllm",))],
    "batch_search": [
        Case("grpo", {"train.auto_find_batch_size": True}, "train.auto_find_batch_size", "cannot shrink the batch"),
        Case("sft", {"train.auto_find_batch_size": True, "launch.backend": "deepspeed", "launch.zero_stage": 3},
             "train.auto_find_batch_size", "ZeRO-3"),
    ],
    "checkpointing": [
        Case("sft", {"train.gradient_checkpointing": True, "train.activation_checkpointing": False},
             "train.gradient_checkpointing", "activation_checkpointing = false takes precedence", "warning"),
        Case("sft", {"launch.backend": "torchrun", "launch.num_processes": 2, "train.fsdp": "full_shard",
                     "train.fsdp_config": {"activation_checkpointing": True}}, "train.fsdp_config",
             "(on by default in trl) cannot both be on"),
    ],
    "processes_per_gpu": [Case("sft", {"launch.backend": "torchrun", "launch.num_processes": 4},
                               "launch.num_processes", "this machine shows 2 GPU(s)", "warning", gpus=2)],
    "fsdp_needs_processes": [Case("sft", {"train.fsdp": "full_shard"}, "train.fsdp",
                                  'backend "python" starts one process')],
    "launch_packages": [Case("sft", {"launch.backend": "deepspeed", "launch.zero_stage": 2}, "launch.zero_stage",
                             "DeepSpeed is not installed", offline=("deepspeed",))],
    # -- per trainer (rules_stages.py) --
    "known_values": [
        Case("grpo", {"train.loss_type": "dapoo"}, "train.loss_type", "did you mean 'dapo'"),
        Case("kto", {"train.loss_type": "apo_zero"}, "train.loss_type", "not one trl knows for stage kto"),
    ],
    "generation_batch": [
        Case("grpo", {"train.generation_batch_size": 12}, "train.generation_batch_size",
             "must be a multiple of the global batch (16"),
        Case("rloo", {"train.per_device_train_batch_size": 3, "train.num_generations": 2},
             "train.per_device_train_batch_size", "not divisible by num_generations (2)"),
        Case("grpo", {"train.generation_batch_size": 16, "train.steps_per_generation": 2},
             "train.generation_batch_size", "cannot both be set"),
    ],
    "reference_sync": [
        Case("grpo", {"train.sync_ref_model": True, "train.beta": UNSET}, "train.sync_ref_model",
             "GRPO's default beta is 0.0"),
        Case("dpo", {"train.sync_ref_model": True, **lora("q_proj")}, "train.sync_ref_model", "LoRA adapter"),
    ],
    "reward_weights": [Case("grpo", {"train.reward_weights": [1.0]}, "train.reward_weights",
                            "1 reward weights for 2 reward functions")],
    "grpo_logging_and_vllm": [Case("grpo", {"train.log_completions_hub_repo": "me/completions"},
                                   "train.log_completions_hub_repo", "log_completions is off")],
    "grpo_loss_combinations": [
        Case("grpo", {"train.loss_type": "vespo", "train.use_vllm": True}, "train.loss_type",
             'got "sequence_mask"', offline=()),
        Case("grpo", {"train.importance_sampling_level": "sequence"}, "train.importance_sampling_level",
             "(GRPO's default) weights each sequence by its length", "warning"),
    ],
    "dpo_losses": [
        Case("dpo", {"train.loss_type": ["sigmoidd"]}, "train.loss_type", "DPO has no loss type \"sigmoidd\""),
        Case("dpo", {"train.loss_type": ["sigmoid", "hinge"], "train.loss_weights": [1.0]}, "train.loss_weights",
             "1 loss_weights for 2 loss types"),
        Case("dpo", {"train.loss_type": ["exo_pair"]}, "train.loss_type", "needs label_smoothing > 0"),
        Case("dpo", {"train.loss_type": ["bco_pair"], "train.f_divergence_type": "js_divergence"},
             "train.f_divergence_type", "works only with the losses"),
    ],
    "kto_kl_term": [
        Case("kto", {"train.per_device_train_batch_size": 1}, "train.per_device_train_batch_size",
             "needs per_device_train_batch_size > 1"),
        Case("kto", {"train.train_sampling_strategy": "random"}, "train.train_sampling_strategy",
             'needs train_sampling_strategy = "sequential"'),
    ],
    "sft_padding_and_loss": [
        Case("sft", {"train.padding_free": True}, "train.padding_free", "padding_free without packing"),
        Case("sft", lora("q_proj", "lm_head"), "peft.target_modules", "chunked_nll loss"),
    ],
    "distill_adapter": [Case("distill", lora("lm_head"), "peft.target_modules", "adapter on lm_head")],
    "distill_vocabulary": [Case("distill", {"model.teacher": "@teacher"}, "model.teacher",
                                "the teacher's vocab_size (1000) differs from the student's (512)")],
    "ppo_batches": [
        Case("ppo", {"train.num_mini_batches": 3}, "train.num_mini_batches", "does not split into num_mini_batches"),
        Case("ppo", {"train.whiten_rewards": True}, "train.whiten_rewards", "mini-batches of at least 8 (here 4)"),
        Case("ppo", {"train.stop_token_id": 2}, "train.stop_token_id", 'stop_token = "eos"'),
    ],
    # -- checks of validate.py extended here --
    "ranges": [
        Case("grpo", {"train.top_p": 1.5}, "train.top_p", "1.5 must be <= 1"),
        Case("sft", {"train.warmup_steps": -1}, "train.warmup_steps", "-1 must be >= 0"),
        Case("sft", {"train.save_steps": 0}, "train.save_steps", "0 must be > 0"),
        Case("distill", {"train.beta": 1.5}, "train.beta", "1.5 must be <= 1"),
        Case("ppo", {"train.num_mini_batches": 0}, "train.num_mini_batches", "0 must be >= 1"),
        Case("kto", {"train.undesirable_weight": -1.0}, "train.undesirable_weight", "must be >= 0"),
    ],
    "launch_keys": [  # [launch] types and ranges (recipe.SECTIONS) and the cross-key rules of validate.launch
        Case("sft", {"launch.backend": "slurm"}, "launch.backend", "should be one of python, torchrun"),
        Case("sft", {"launch.num_processes": 0}, "launch.num_processes", "below the minimum 1"),
        Case("sft", {"launch.num_machines": "2"}, "launch.num_machines", "should be an integer"),
        Case("sft", {"launch.main_port": 70000}, "launch.main_port", "above the maximum 65535"),
        Case("sft", {"launch.mixed_precision": "fp8"}, "launch.mixed_precision", "should be one of auto, no, bf16, fp16"),
        Case("sft", {"launch.zero_stage": 4}, "launch.zero_stage", "above the maximum 3"),
        Case("sft", {"launch.backend": "deepspeed", "launch.zero_stage": 2, "launch.offload_params": True},
             "launch.offload_params", "needs ZeRO stage 3"),
        Case("sft", {"launch.backend": "torchrun", "launch.offload_optimizer": True}, "launch.offload_optimizer",
             "needs ZeRO"),
    ],
    "managed_keys": [Case("sft", {"train.deepspeed": "ds.json"}, "train.deepspeed", "managed by the workbench")],
    "machine_rank": [Case("sft", {"launch.machine_rank": 1}, "launch.machine_rank", "below num_machines (1)")],
    # -- dataset rows (rules_data.py) --
    "zero_rows": [
        Case("grpo", {}, "data.path", "none of its 3 rows is usable: no 'prompt'",
             data=[{"prompt": None, "answer": "1"}] * 3),
        Case("grpo", {}, "data.path", "'prompt' is empty, so the run would train on zero rows",
             data=[{"prompt": "   ", "answer": "1"}] * 2),
        Case("sft", {}, "data.path", "none of its 2 rows is usable: 'messages' is empty", data=[{"messages": []}] * 2),
        Case("grpo", {"data.max_samples": 2}, "data.path", "none of its first 2 rows (data.max_samples)",
             data=[{"prompt": None}, {"prompt": ""}] + [GOOD_PROMPT] * 20),
        Case("grpo", {}, "data.path", "dataset file is empty", data=""),
        Case("grpo", {}, "data.path", "dataset has no rows", data="\n \n"),
        Case("sft", {}, "data.path", "none of its 2 rows is usable: no 'text'", data="text,other\n,a\n,b\n",
             suffix=".csv"),
    ],
    "row_columns": [
        Case("grpo", {}, "data.path", "line 21: no 'prompt'", data=[GOOD_PROMPT] * 20 + [{"answer": "3"}]),
        Case("grpo", {}, "data.path", "2 of 22 rows (first: line 21): no 'prompt'",
             data=[GOOD_PROMPT] * 20 + [{"answer": "3"}, {"prompt": None, "answer": "4"}]),
        Case("grpo", {}, "data.path", "'prompt' is a number, not a string or a list of chat messages",
             data=[GOOD_PROMPT] * 20 + [{"prompt": 5, "answer": "5"}]),
        Case("kto", {}, "data.path", "'label' is a string, not true or false",
             data=[{"prompt": "a", "completion": "b", "label": True}, {"prompt": "a", "completion": "c",
                                                                        "label": "no"}] * 8),
        Case("grpo", {}, "data.path", "not of {\"role\": ..., \"content\": ...} messages",
             data=[GOOD_PROMPT] * 20 + [{"prompt": [{"content": "hi"}], "answer": "1"}]),
        Case("grpo", {}, "data.path", "'prompt' is empty", "warning", data=[GOOD_PROMPT] * 20 + [{"prompt": ""}]),
    ],
    "row_forms": [
        Case("dpo", {}, "data.path", "the prompt is a list of chat messages but 'chosen' is a string",
             data=[{"prompt": CHAT, "chosen": ANSWER, "rejected": ANSWER}] * 4
             + [{"prompt": CHAT, "chosen": "2", "rejected": ANSWER}]),
        Case("dpo", {"data.system_prompt": "Be brief."}, "data.path", "data.system_prompt makes text prompts chat",
             data=[{"prompt": "1 + 1?", "chosen": "2", "rejected": "3"}] * 4),
        Case("grpo", {}, "data.path", "text in some rows and chat messages in others", "warning",
             data=[GOOD_PROMPT] * 20 + [{"prompt": CHAT, "answer": "2"}]),
    ],
    "enough_rows": [
        Case("grpo", {}, "data.path", "1 usable rows, but one generation batch takes 4 prompts",
             data=[GOOD_PROMPT]),
        Case("ppo", {}, "data.path", "would wait forever", data=[GOOD_PROMPT] * 3),
        Case("sft", {"train.dataloader_drop_last": True}, "data.path", "dataloader_drop_last drops every partial",
             data=[{"messages": CHAT + ANSWER}] * 3),
    ],
    "label_balance": [
        Case("kto", {}, "data.path", "every usable row is labelled desirable", "warning",
             data=[{"prompt": "a", "completion": "b", "label": True}] * 8),
        Case("kto", {}, "train.desirable_weight", "12 desirable vs 4 undesirable rows", "warning",
             data=[{"prompt": "a", "completion": "b", "label": True}] * 12
             + [{"prompt": "a", "completion": "c", "label": False}] * 4),
    ],
    "assistant_only_loss_data": [Case("sft", {}, "train.assistant_only_loss", "needs chat data",
                                      data=[{"text": "plain words"}] * 8)],
    "chat_template": [Case("sft", {"model.path": "@plain-model"}, "model.path", "has no chat template")],
}


def model_folder(path: Path, vocab: int, template: bool) -> Path:
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"model_type": "qwen2", "vocab_size": vocab}))
    (path / "model.safetensors").write_bytes(b"")
    tok = {"model_max_length": 64, **({"chat_template": "{{ messages }}"} if template else {})}
    (path / "tokenizer_config.json").write_text(json.dumps(tok))
    (path / "tokenizer.json").write_text("{}")
    return path


def build(case: Case, tmp_path: Path) -> Recipe:
    r = Recipe.load(RECIPES / f"{case.recipe}-tiny.toml")
    for key, value in case.sets.items():
        if value is UNSET:
            r.unset(key)
        elif value == "@teacher":
            r.set(key, str(model_folder(tmp_path / "teacher", 1000, True)))
        elif value == "@plain-model":
            r.set(key, str(model_folder(tmp_path / "plain", 512, False)))
        else:
            r.set(key, value)
    if case.data is not None:
        f = tmp_path / f"rows{case.suffix}"
        f.write_text(case.data if isinstance(case.data, str) else "".join(json.dumps(x) + "\n" for x in case.data))
        r.set("data.path", str(f))
    return r


def check(case: Case, tmp_path: Path, monkeypatch) -> list:
    monkeypatch.setattr(rules, "installed", lambda m: m not in case.offline and REAL_INSTALLED(m))
    monkeypatch.setattr(rules, "gpu_visible", lambda: case.gpus > 0)
    monkeypatch.setattr(rules, "gpu_count", lambda: case.gpus)
    problems = validate_recipe(build(case, tmp_path), tmp_path / "runs")
    shown = "\n".join(p.format() for p in problems)
    hits = [p for p in problems if p.key == case.key and case.phrase in f"{p.message} {p.hint}"
            and p.severity == case.severity]
    assert hits, f"no {case.severity} at {case.key} saying {case.phrase!r}:\n{shown}"
    assert all(p.hint for p in hits), f"a problem without what to do:\n{shown}"
    if case.data is not None:  # row problems name the data file; recipe problems the recipe
        assert all(p.file in (str(tmp_path / f"rows{case.suffix}"), str(RECIPES / f"{case.recipe}-tiny.toml"))
                   for p in hits), shown
    return hits


@pytest.mark.parametrize("rule", sorted(RULE_CASES))
def test_rule(rule, tmp_path, monkeypatch):
    for i, case in enumerate(RULE_CASES[rule]):
        (tmp_path / str(i)).mkdir()
        check(case, tmp_path / str(i), monkeypatch)


def test_eval_section_makes_trl_evaluation_valid(tmp_path):
    """With [eval], trl gets an eval_dataset: matching strategies and a best metric are fine."""
    r = Recipe.load(RECIPES / "sft-tiny.toml")
    for key, value in {"eval.max_prompts": 4, "train.eval_strategy": "steps", "train.eval_steps": 20,
                       "train.load_best_model_at_end": True, "train.metric_for_best_model": "eval_loss"}.items():
        r.set(key, value)
    problems = [p for p in validate_recipe(r, tmp_path / "runs") if p.severity == "error"]
    assert not problems, "\n".join(p.format() for p in problems)


def test_every_rule_has_a_case():
    registered = {r.__name__ for r in rules.TRAIN_RULES + rules_stages.STAGE_RULES}
    assert registered <= set(RULE_CASES), registered - set(RULE_CASES)


def test_zero_rows_named_by_the_cli(runs_dir, tmp_path):
    data = tmp_path / "prompts.jsonl"
    data.write_text('{"question": "What is 1 + 1?", "prompt": null}\n' * 4)
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'[run]\nstage = "grpo"\n[model]\npath = "builtin:tiny-lm"\n[data]\npath = "{data}"\n'
                      '[rewards]\nfuncs = ["format"]\n[train]\nnum_generations = 2\nper_device_train_batch_size = 4\n')
    proc = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "validate", str(recipe)), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{data}:1: data.path: none of its 4 rows is usable: no 'prompt'" in proc.stderr
    assert "zero rows" in proc.stderr and "Traceback" not in proc.stderr


def test_a_fixed_dataset_validates_clean_again(tmp_path):
    """Row scans are cached per file version (the editor re-validates on every pause): a fix is seen at once."""
    case = RULE_CASES["zero_rows"][0]
    r = build(case, tmp_path)
    assert any("zero rows" in p.message for p in validate_recipe(r))
    (tmp_path / "rows.jsonl").write_text((json.dumps(GOOD_PROMPT) + "\n") * 4)  # a generation batch: 4 prompts
    assert validate_recipe(r) == []


def test_dpo_loss_type_may_be_one_string():
    r = Recipe.load(RECIPES / "dpo-tiny.toml")
    r.set("train.loss_type", "sigmoid")
    assert validate_recipe(r) == []


SHIPPED = sorted(RECIPES.glob("*.toml")) + sorted((RECIPES / "demo").glob("*.toml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(RECIPES)))
def test_shipped_recipes_validate_clean(path, runs_dir):
    problems = validate_recipe(Recipe.load(path), runs_dir, in_pipeline=path.parent.name == "demo")
    assert problems == [], "\n".join(p.format() for p in problems)


# -- the real classes raise on the same values ------------------------------------------------------------------
# (rule, case index in RULE_CASES, what the child builds: a config class and its kwargs, or a named helper,
#  a phrase of the error it must raise)
GRPO_OK = {"per_device_train_batch_size": 8, "num_generations": 4}
PROOFS = [
    ("whole_steps", 0, ("trl:SFTConfig", {"save_steps": 2.5}), "save_steps must be an integer"),
    ("one_precision", 0, ("trl:SFTConfig", {"bf16": True, "fp16": True}), "fp16 and bf16"),
    ("load_best_needs_eval", 0, ("trl:SFTConfig", {"load_best_model_at_end": True}), "strategy to match"),
    ("scheduler_needs_eval", 0, ("trl:SFTConfig", {"lr_scheduler_type": "reduce_lr_on_plateau"}),
     "requires an eval strategy"),
    ("prefetch_needs_workers", 0, ("trl:SFTConfig", {"dataloader_prefetch_factor": 2}), "dataloader_num_workers"),
    ("ranges", 1, ("trl:SFTConfig", {"warmup_steps": -1}), "warmup_steps >= 0"),
    ("ranges", 3, ("trl:DistillationConfig", {"beta": 1.5}), "beta must be in [0.0, 1.0]"),
    ("generation_batch", 0, ("trl:GRPOConfig", {**GRPO_OK, "generation_batch_size": 12}), "global batch size"),
    ("generation_batch", 1, ("trl:RLOOConfig", {"per_device_train_batch_size": 3, "num_generations": 2}),
     "divisible by num_generations"),
    ("batch_search", 0, ("trl:GRPOConfig", {**GRPO_OK, "auto_find_batch_size": True}), "not supported by GRPO"),
    ("grpo_logging_and_vllm", 0, ("trl:GRPOConfig", {**GRPO_OK, "log_completions_hub_repo": "me/completions"}),
     "log_completions is False"),
    ("dpo_losses", 1, ("trl:DPOConfig", {"loss_type": ["sigmoid", "hinge"], "loss_weights": [1.0]}),
     "same length as `loss_type`"),
    ("scheduler_arguments", 0, ("scheduler", {"name": "cosine_with_min_lr"}), "min_lr or min_lr_rate"),
    ("ppo_batches", 0, ("ppo_exact_div", {"batch": 4, "num_mini_batches": 3}), "inexact division"),
    ("reporters_installed", 0, ("report_to", {"names": ["wandbb"]}), "wandbb is not supported"),
]
# The same targets with working values build fine: the proofs fail because of the value the rule names.
CONTROLS = [
    ("trl:SFTConfig", {"save_steps": 2, "bf16": True, "lr_scheduler_type": "cosine"}),
    ("trl:DistillationConfig", {"beta": 1.0}),
    ("trl:GRPOConfig", {**GRPO_OK, "generation_batch_size": 16}),
    ("trl:RLOOConfig", {"per_device_train_batch_size": 4, "num_generations": 2}),
    ("trl:DPOConfig", {"loss_type": ["sigmoid", "hinge"], "loss_weights": [1.0, 0.5]}),
    ("scheduler", {"name": "cosine"}),
    ("ppo_exact_div", {"batch": 4, "num_mini_batches": 2}),
    ("report_to", {"names": ["tensorboard"]}),
]

CHILD = r'''
import json, sys, tempfile, warnings
warnings.filterwarnings("ignore")
import importlib
out = {}
for i, (target, kwargs) in enumerate(json.loads(sys.argv[1])):
    try:
        if target == "scheduler":
            import torch
            from transformers import get_scheduler
            opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
            get_scheduler(kwargs["name"], opt, num_warmup_steps=0, num_training_steps=10)
        elif target == "ppo_exact_div":
            from trl.experimental.ppo.ppo_trainer import exact_div
            exact_div(kwargs["batch"], kwargs["num_mini_batches"], "`local_batch_size` must be a multiple")
        elif target == "report_to":
            from transformers.integrations import get_reporting_integration_callbacks
            get_reporting_integration_callbacks(kwargs["names"])
        else:
            module, name = target.split(":")
            cls = getattr(importlib.import_module(module), name)
            base = {"output_dir": tempfile.mkdtemp(), "report_to": "none", "use_cpu": True, "bf16": False}
            cls(**{**base, **kwargs})
        out[i] = None
    except Exception as e:
        out[i] = f"{type(e).__name__}: {e}"
print(json.dumps(out))
'''


@pytest.fixture(scope="module")
def real_errors():
    targets = [p[2] for p in PROOFS] + CONTROLS
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(targets)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "TRANSFORMERS_VERBOSITY": "error"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return [out[str(i)] for i in range(len(targets))]


@pytest.mark.parametrize("i", range(len(PROOFS)), ids=[f"{p[0]}-{p[1]}" for p in PROOFS])
def test_rule_is_real(i, real_errors, tmp_path, monkeypatch):
    rule, index, (target, kwargs), phrase = PROOFS[i]
    error = real_errors[i]
    assert error and phrase in error, f"{target}({kwargs}) gave {error!r}, not an error about {phrase!r}"
    check(RULE_CASES[rule][index], tmp_path, monkeypatch)  # and validate says so before launch


def test_working_values_build(real_errors):
    built = dict(zip(map(repr, CONTROLS), real_errors[len(PROOFS):]))
    assert all(e is None for e in built.values()), built
