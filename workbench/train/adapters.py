"""Adapter configs for the stages: ``peft_config(recipe, task_type)`` from the recipe's [peft] table, the 4-bit
base of QLoRA, and loading a run's unmerged adapter (prompt / prefix tuning) on its base.

Methods (workbench/core/peft_methods.py holds the light facts: fields, which stage takes which, merging):
  lora, dora   LoraConfig (DoRA: use_dora=True)          qlora  LoraConfig on a base loaded in 4-bit (bitsandbytes)
  ia3          IA3Config (target_modules, feedforward_modules)
  prompt       PromptTuningConfig (num_virtual_tokens)    prefix PrefixTuningConfig (num_virtual_tokens)
A causal LM gets a CAUSAL_LM adapter. A reward model (``*ForSequenceClassification``) needs SEQ_CLS: with
CAUSAL_LM the wrapped model fails on ``prepare_inputs_for_generation`` (FINDINGS.md); and its ``score`` head
is listed in ``modules_to_save`` so the head trains in full (the stage's own output, often freshly added).
Imports peft only inside the functions (the training child's side; never the TUI/CLI).
"""
from __future__ import annotations

from workbench.core.peft_methods import FEEDFORWARD_NAMES, LORA_FAMILY, method_of, unmerged_method

CAUSAL_LM = "CAUSAL_LM"
SEQ_CLS = "SEQ_CLS"
HEAD_MODULES = {SEQ_CLS: ["score"]}  # the head of Qwen2/Llama/Mistral/...ForSequenceClassification


def peft_config(recipe, task_type: str = CAUSAL_LM):
    """A peft config for the recipe's [peft] method, or None when the recipe trains all weights (``full``)."""
    method = method_of(recipe)
    p = recipe.section("peft")
    heads = HEAD_MODULES.get(task_type)
    if method in LORA_FAMILY:
        from peft import LoraConfig

        return LoraConfig(r=p.get("r", 8), lora_alpha=p.get("alpha", 16), lora_dropout=p.get("dropout", 0.0),
                          target_modules=p.get("target_modules", "all-linear"), task_type=task_type,
                          modules_to_save=heads, use_dora=method == "dora")
    if method == "ia3":
        from peft import IA3Config

        targets, ff = p.get("target_modules"), p.get("feedforward_modules")
        if isinstance(targets, str) and targets != "all-linear":
            targets = [targets]
        if isinstance(targets, list) and ff is None:  # peft's default MLP names must be among the targets
            ff = [m for m in targets if m in FEEDFORWARD_NAMES]
        return IA3Config(target_modules=targets, feedforward_modules=ff, task_type=task_type, modules_to_save=heads)
    if method == "prompt":
        from peft import PromptTuningConfig

        return PromptTuningConfig(task_type=task_type, num_virtual_tokens=p.get("num_virtual_tokens", 16))
    if method == "prefix":
        from peft import PrefixTuningConfig

        return PrefixTuningConfig(task_type=task_type, num_virtual_tokens=p.get("num_virtual_tokens", 16))
    return None


def run_peft_config(ctx, task_type: str = CAUSAL_LM):
    """The adapter a run adds to its model; None when model.path is a run's unmerged (prompt / prefix) adapter, which
    the run goes on training as it is (trl refuses a PeftModel together with a new peft_config)."""
    found = unmerged_method(ctx.model_path)
    if found:
        ctx.note(f"model.path {ctx.recipe.get('model.path')} is a {found} adapter that was not merged: this run goes "
                 "on training it with its own settings ([peft] keys other than method are not used)")
        return None
    return peft_config(ctx.recipe, task_type)


def quantization_config(recipe):
    """QLoRA's 4-bit NF4 base (double quantization, compute in bf16 where the GPU has it); None otherwise."""
    if method_of(recipe) != "qlora":
        return None
    import torch
    from transformers import BitsAndBytesConfig

    compute = torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float16
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute)


# -- unmerged adapters in final/ ------------------------------------------------------------------------------------
def load_with_adapter(model_cls, folder, trainable: bool, **kwargs):
    """Base (recorded in adapter_config.json) + the adapter in ``folder`` as a PeftModel; ``trainable`` keeps the
    adapter's weights trainable (the next stage goes on training it), else they are frozen (a teacher, a
    reference, an evaluation)."""
    from peft import PeftConfig, PeftModel, get_peft_model, set_peft_model_state_dict
    from peft.utils import load_peft_weights

    config = PeftConfig.from_pretrained(str(folder))
    base = model_cls.from_pretrained(config.base_model_name_or_path, **kwargs)
    if not trainable:  # frozen through and through (peft leaves a prompt encoder's grads on)
        return PeftModel.from_pretrained(base, str(folder)).requires_grad_(False).eval()
    # peft refuses is_trainable=True for prompt learning: build the adapter afresh, then load its trained weights
    config.inference_mode = False
    model = get_peft_model(base, config)
    set_peft_model_state_dict(model, load_peft_weights(str(folder)))  # prompt learning: into the prompt encoder
    return model

