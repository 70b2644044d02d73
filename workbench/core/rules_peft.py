"""[peft] checks before launch: the method against the stage's trainer, QLoRA's GPU and bitsandbytes, prefix tuning
and gradient checkpointing, IA3's module lists, fields of another method, and runs whose final/ holds an unmerged
adapter (prompt / prefix tuning) used as a model.

Light: no torch/peft import (find_spec for bitsandbytes, the /proc and /dev view of GPUs). The facts are in
core/peft_methods.py (measured on trl 1.12 / peft 0.21).
"""
from __future__ import annotations

from workbench.core import peft_methods as pm
from workbench.core import rules
from workbench.core.rules import RuleContext


def method_fits_stage(c: RuleContext) -> None:
    """trl 1.12's trainers: which adapter methods each stage trains with (peft_methods.REFUSED)."""
    method = pm.method_of(c.r)
    if method == "full":
        return
    if not c.stage.trains_model:
        c.add("peft.method", f"stage {c.stage.name} trains nothing, so [peft] method = \"{method}\" does not apply",
              'remove [peft] method (or set "full")', severity="warning")
        return
    why = pm.refused(c.stage.name, method)
    if why:
        fits = [m for m in pm.ADAPTERS if not pm.refused(c.stage.name, m)]
        c.add("peft.method", f"stage {c.stage.name} cannot train a {pm.TITLES[method]} adapter: {why}",
              f"use one of: {', '.join(fits)} (or full)")


def qlora_needs_cuda(c: RuleContext) -> None:
    """QLoRA loads the base in 4-bit through bitsandbytes, whose 4-bit kernels need a CUDA GPU."""
    if pm.method_of(c.r) != "qlora":
        return
    if c.train.get("use_cpu") is True:
        c.add("train.use_cpu", "qlora loads the base in 4-bit on a CUDA GPU, and use_cpu = true trains on the CPU",
              'remove use_cpu, or use [peft] method = "lora"')
    elif not rules.gpu_visible():
        c.add("peft.method", "qlora loads the base in 4-bit through bitsandbytes, which needs a CUDA GPU, and this "
              "machine shows none", 'use method = "lora" here (same adapter, 16-bit base), or run on a GPU machine')
    if not rules.installed("bitsandbytes"):
        c.add("peft.method", "qlora needs the bitsandbytes package (4-bit loading), which is not installed",
              'pip install bitsandbytes, or use method = "lora"')


def prefix_without_checkpointing(c: RuleContext) -> None:
    """Prefix tuning + gradient checkpointing: the recomputed attention gets a mask without the prefix, and the
    first step fails on a size mismatch (peft 0.21 / transformers 5.23). The child turns checkpointing off for it."""
    if pm.method_of(c.r) != "prefix":
        return
    for key in ("activation_checkpointing", "gradient_checkpointing"):
        if c.train.get(key) is True:
            c.add(f"train.{key}", f"prefix tuning does not train with {key}: the recomputed attention sees a mask "
                  "without the prefix and the first step fails", f"remove {key} (the workbench turns it off for "
                  'prefix tuning), or use method = "prompt" or "lora"')


def fields_of_the_method(c: RuleContext) -> None:
    """[peft] keys another method uses do nothing for this one (say so, so a number is not trusted in vain). A key
    at its default (the templates' r = 8, alpha = 16 under method = "full") is left alone."""
    from workbench.core.recipe import SECTIONS

    method = pm.method_of(c.r)
    if method in ("full", *pm.LORA_FAMILY):
        return
    own = pm.FIELDS.get(method, ())
    for key, value in c.r.section("peft").items():
        spec = SECTIONS["peft"].get(key)
        if key != "method" and key not in own and spec is not None and value != spec.default:
            users = [m for m, keys in pm.FIELDS.items() if key in keys]
            c.add(f"peft.{key}", f"peft.{key} does not apply to {pm.TITLES[method]} (it is for "
                  f"{', '.join(users) or 'no method'})", f"{method}'s keys: {', '.join(own) or 'none'}",
                  severity="warning")


def ia3_feedforward_subset(c: RuleContext) -> None:
    """IA3Config: feedforward_modules must be a subset of target_modules (peft raises otherwise)."""
    if pm.method_of(c.r) != "ia3":
        return
    targets, ff = c.r.get("peft.target_modules"), c.r.get("peft.feedforward_modules")
    if targets == "all-linear" or targets is None or ff is None:
        return
    t = {targets} if isinstance(targets, str) else set(targets) if isinstance(targets, list) else None
    f = {ff} if isinstance(ff, str) else set(ff) if isinstance(ff, list) else None
    if t is not None and f is not None and not f <= t:
        c.add("peft.feedforward_modules", f"feedforward_modules {sorted(f - t)} are not among target_modules "
              f"{sorted(t)}", "list every feed-forward module in target_modules too")


def unmerged_adapter_models(c: RuleContext) -> None:
    """A run whose final/ holds a prompt / prefix adapter (it cannot merge): as the trained model it goes on training
    that adapter (peft_methods.CONTINUE_STAGES, the same method); as a teacher or reward model it cannot be used."""
    from workbench.core.rules_data import model_folder  # local: rules_data imports rules

    if not c.files:
        return
    for key in ("model.path", "model.teacher", "model.reward_model"):
        folder = model_folder(c, key)
        found = pm.unmerged_method(folder) if folder is not None and folder.is_dir() else None
        if found is None:
            continue
        what = f"{c.r.get(key)} holds a {pm.TITLES[found]} adapter that cannot be merged into the weights"
        if key != "model.path":
            c.add(key, f"{what}, so it cannot serve as {key.split('.')[1].replace('_', ' ')}",
                  "use a run trained with full, lora, dora, qlora or ia3 (those are merged into final/)")
        elif not c.stage.continues_adapter:
            c.add(key, f"{what}; stage {c.stage.name} cannot load it (only {', '.join(pm.CONTINUE_STAGES)} go on "
                  "training such an adapter: the others load the model again as a reference, a value model or a "
                  "classification head, without the adapter)",
                  f"continue it with one of: {', '.join(pm.CONTINUE_STAGES)}; or use a merged run")
        elif pm.method_of(c.r) != found:
            c.add("peft.method", f"{what}; this run goes on training it, so [peft] method must be \"{found}\" (the "
                  "adapter's own settings apply)", f'set [peft] method = "{found}"')


PEFT_RULES = (method_fits_stage, qlora_needs_cuda, prefix_without_checkpointing, fields_of_the_method,
              ia3_feedforward_subset, unmerged_adapter_models)
