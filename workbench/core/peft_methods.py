"""Adapter methods of ``[peft] method``: their fields, which stage's trl trainer takes which, what merges. Light.

  full    every weight trains                         lora   LoRA (r, alpha, dropout, target_modules)
  dora    LoRA with a learned magnitude (use_dora)    qlora  LoRA on a base loaded in 4-bit NF4 (bitsandbytes, CUDA)
  ia3     IA3 scaling vectors (target_modules, feedforward_modules)
  prompt  prompt tuning (num_virtual_tokens)          prefix prefix tuning (num_virtual_tokens)

Merging into final/ (workbench/train/finalize.py): LoRA, DoRA and IA3 merge into the base (QLoRA into the base
loaded unquantized), so ``run:ID`` is a plain model. Prompt and prefix tuning add virtual tokens and cannot merge:
final/ keeps the adapter, a README saying so and ``WORKBENCH_ADAPTER.json``; the child loads base + adapter for
``run:ID``. Stage support was measured on trl 1.12 / peft 0.21 (tests/e2e/test_adapters.py runs each pair that
runs on a CPU); the reasons a trainer refuses a method are in ``REFUSED``.
"""
from __future__ import annotations

from workbench.core.stages import STAGES, names

METHODS = {
    "full": "full fine-tuning: every weight trains",
    "lora": "LoRA adapter: low-rank updates (rank r, scale alpha / r) on the target modules",
    "dora": "DoRA: LoRA plus a learned magnitude per output (use_dora); a little slower, often closer to full",
    "qlora": "QLoRA: LoRA on a base loaded in 4-bit NF4 (bitsandbytes; needs a CUDA GPU)",
    "ia3": "IA3: learned scaling vectors on the target (and feed-forward) modules; very few parameters",
    "prompt": "prompt tuning: num_virtual_tokens trained embeddings before the input (the model is frozen)",
    "prefix": "prefix tuning: trained key/value prefixes in every layer (the model is frozen)",
}
TITLES = {"full": "full fine-tuning", "lora": "LoRA", "dora": "DoRA", "qlora": "QLoRA", "ia3": "IA3",
          "prompt": "prompt tuning", "prefix": "prefix tuning"}
LORA_FAMILY = ("lora", "dora", "qlora")
PROMPT_LEARNING = ("prompt", "prefix")
MERGEABLE = (*LORA_FAMILY, "ia3")
ADAPTERS = tuple(m for m in METHODS if m != "full")

# Each method's own [peft] keys (the form shows these; other [peft] keys do not apply to it).
FIELDS = {
    "full": (),
    "lora": ("r", "alpha", "dropout", "target_modules"),
    "dora": ("r", "alpha", "dropout", "target_modules"),
    "qlora": ("r", "alpha", "dropout", "target_modules"),
    "ia3": ("target_modules", "feedforward_modules"),
    "prompt": ("num_virtual_tokens",),
    "prefix": ("num_virtual_tokens",),
}
# peft's default IA3 feed-forward module names (the ones among the targets are scaled on their input).
FEEDFORWARD_NAMES = ("down_proj", "w2", "fc2", "dense_4h_to_h", "fc_out", "c_proj")
ADAPTER_MARKER = "WORKBENCH_ADAPTER.json"  # in final/: an adapter that is not merged (see the module docstring)

# (stage, method) pairs trl 1.12's trainers refuse or break on (measured on the built-in tiny models), and why.
_BYPASS = ("trl's {trainer} computes its loss by calling the model's backbone directly, bypassing "
           "PeftModel.forward, so the virtual tokens are never prepended (the trainer refuses prompt-learning "
           "adapters at start)")
_LOGITS = ("trl's {trainer} scores completions on logits that still carry the {n} virtual tokens prompt tuning "
           "prepends, so its log-probabilities do not line up with the labels (a shape error at the first step)")
REFUSED = {
    ("distill", "prompt"): _BYPASS.format(trainer="DistillationTrainer"),
    ("distill", "prefix"): _BYPASS.format(trainer="DistillationTrainer"),
    ("dpo", "prompt"): _LOGITS.format(trainer="DPOTrainer", n="num_virtual_tokens"),
    ("kto", "prompt"): _LOGITS.format(trainer="KTOTrainer", n="num_virtual_tokens"),
    ("ppo", "prompt"): _LOGITS.format(trainer="PPOTrainer", n="num_virtual_tokens"),
}
# Stages whose trained model may be a run's unmerged (prompt / prefix) adapter: the trainer gets base + adapter as a
# PeftModel and goes on training that adapter. The others load the model more than once (a reference, a value
# model, a sequence-classification head) and would lose the adapter.
# (Declared continues_adapter in core/stages.py.)
CONTINUE_STAGES = names("continues_adapter")
NO_MODEL_STAGES = tuple(n for n, s in STAGES.items() if not s.trains_model)  # trains nothing: [peft] does not apply


def method_of(recipe) -> str:
    m = recipe.get("peft.method", "full")
    return m if isinstance(m, str) and m else "full"


def refused(stage: str, method: str) -> str | None:
    """Why stage's trainer cannot train with this adapter method; None when it can."""
    return REFUSED.get((stage, method))


def unmerged_method(folder) -> str | None:
    """The [peft] method of a final/ (or any folder) that holds an adapter which was not merged: prompt / prefix
    tuning (WORKBENCH_ADAPTER.json, else a prompt-learning adapter_config.json without a config.json); else None."""
    import json
    from pathlib import Path

    folder = Path(folder)
    for name, key in ((ADAPTER_MARKER, "method"), ("adapter_config.json", "peft_type")):
        try:
            data = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        value = str(data.get(key, "")).lower() if isinstance(data, dict) else ""
        if name == "adapter_config.json" and (folder / "config.json").exists():
            return None
        value = {"prompt_tuning": "prompt", "prefix_tuning": "prefix"}.get(value, value)
        if value in PROMPT_LEARNING:
            return value
    return None
