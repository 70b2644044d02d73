"""LoRA adapter configs for the stages: ``peft_config(recipe, task_type)`` from the recipe's [peft] table.

A causal LM gets a CAUSAL_LM adapter. A reward model (``*ForSequenceClassification``) needs SEQ_CLS: with
CAUSAL_LM the wrapped model fails on ``prepare_inputs_for_generation`` (FINDINGS.md); and its ``score`` head
is listed in ``modules_to_save`` so the head trains in full (the stage's own output, often freshly added).
Imports peft only inside the function (the training child's side; never the TUI/CLI).
"""
from __future__ import annotations

CAUSAL_LM = "CAUSAL_LM"
SEQ_CLS = "SEQ_CLS"
HEAD_MODULES = {SEQ_CLS: ["score"]}  # the head of Qwen2/Llama/Mistral/...ForSequenceClassification


def peft_config(recipe, task_type: str = CAUSAL_LM):
    """A peft ``LoraConfig``, or None when the recipe trains all weights (``peft.method`` other than lora)."""
    if recipe.get("peft.method", "full") != "lora":
        return None
    from peft import LoraConfig

    p = recipe.section("peft")
    return LoraConfig(r=p.get("r", 8), lora_alpha=p.get("alpha", 16), lora_dropout=p.get("dropout", 0.0),
                      target_modules=p.get("target_modules", "all-linear"), task_type=task_type,
                      modules_to_save=HEAD_MODULES.get(task_type))
