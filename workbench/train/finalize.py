"""The final model of a run: ``save_final(trainer, ctx)`` writes runs/<id>/final/, what ``run:RUN_ID`` loads.

Call it on EVERY rank. The weights go through the trainer's own ``save_model``: under ZeRO-3 (and FSDP) each
process holds only a slice of every large tensor, and save_model gathers the slices (a collective all ranks
must join) and writes safetensors on the main process. ``model.save_pretrained`` on rank 0 alone writes those
tensors with shape (0,) (FINDINGS.md, "Real-shaped cases"). PPO's save_model keeps the policy only.

An adapter run's final/ is a plain model where the method can merge (LoRA, DoRA, QLoRA, IA3): the trainer saves
the adapter (gathered the same way), then the main process loads the base from ``ctx.model_path`` on the CPU with
the trained config (outside ZeRO-3's partitioned loading; QLoRA's base unquantized), applies the adapter and
merges it. A reward model's adapter carries its trained ``score`` head (``modules_to_save``), so the merge keeps
it. Partitioned weights cannot be merged in place. Prompt and prefix tuning add virtual tokens, which no weight
can absorb: final/ keeps the adapter with the tokenizer, a README saying it is not merged and
``WORKBENCH_ADAPTER.json`` (method, base); ``run:ID`` then loads base + adapter (train/adapters.py), and the run
gets a note saying so.

Everything is written into final.tmp/ and renamed to final/ by the main process, so a crash mid-save never
leaves a half-written final/. A stage with no model (best-of-k's Curation) saves nothing.
"""
from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
from pathlib import Path


def save_final(trainer, ctx) -> None:
    """Write ``ctx.rd.final_model`` from a trained trainer; a collective: every rank calls it."""
    if getattr(trainer, "model", None) is None:
        return
    final = ctx.rd.final_model
    tmp, adapter = final.with_name("final.tmp"), final.with_name("final.adapter.tmp")
    if ctx.is_main:  # only the main process writes; the others join save_model's gathers
        for leftover in (tmp, adapter):
            shutil.rmtree(leftover, ignore_errors=True)
    trainer.save_model(str(tmp))
    if not ctx.is_main:
        return
    if (tmp / "adapter_config.json").is_file():
        config = json.loads((tmp / "adapter_config.json").read_text())
        if config.get("peft_type") in UNMERGEABLE:
            keep_unmerged(tmp, ctx, config)
        else:
            os.replace(tmp, adapter)
            merge_adapter(adapter, tmp, ctx, trained_config(trainer))
            shutil.rmtree(adapter)
            if ctx.recipe.get("peft.method") == "qlora":
                ctx.note("QLoRA: the adapter is merged into the base loaded unquantized; final/ is a plain model")
    (tmp / "training_args.bin").unlink(missing_ok=True)  # a pickle of the trainer's args; recipe.toml says it
    ctx.tokenizer.save_pretrained(tmp)
    if final.exists():  # from an earlier (stopped) attempt of a resumed run
        shutil.rmtree(final)
    os.replace(tmp, final)


UNMERGEABLE = {"PROMPT_TUNING": "prompt", "PREFIX_TUNING": "prefix"}  # peft_type -> [peft] method


def keep_unmerged(folder: Path, ctx, config: dict) -> None:
    """final/ as the adapter: the marker the loaders read, and a README in place of peft's model-card template."""
    from workbench.core.peft_methods import ADAPTER_MARKER, TITLES

    method = UNMERGEABLE[config["peft_type"]]
    base = config.get("base_model_name_or_path") or ctx.model_path
    (folder / ADAPTER_MARKER).write_text(json.dumps({
        "merged": False, "method": method, "peft_type": config["peft_type"], "task_type": config.get("task_type"),
        "base": base, "num_virtual_tokens": config.get("num_virtual_tokens"),
        "why": f"{TITLES[method]} trains virtual tokens, which cannot be merged into the model's weights"}, indent=2))
    (folder / "README.md").write_text(
        f"# Not merged: a {TITLES[method]} adapter\n\n"
        f"This folder holds the {TITLES[method]} adapter the run trained ({config.get('num_virtual_tokens')} virtual "
        f"tokens), not a model: {TITLES[method]} cannot be merged into the weights. Its base is\n\n    {base}\n\n"
        "Load both with peft: `AutoPeftModelForCausalLM.from_pretrained(THIS_FOLDER)`; a workbench recipe's "
        "`run:RUN_ID` (and `workbench eval`) does that for you.\n")
    ctx.note(f"final/ holds the {TITLES[method]} adapter, not merged ({TITLES[method]} cannot merge into the "
             f"weights); run:{ctx.rd.path.name} loads it on its base {base}")


def trained_config(trainer):
    """The trained model's config (pad token, labels, ...), for the merged copy; PPO's policy only."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    model = getattr(model, "policy", model)
    return copy.deepcopy(model.config)


def merge_adapter(adapter_dir: Path, out_dir: Path, ctx, config) -> None:
    """Base (``ctx.model_path``, on the CPU) + the saved adapter, merged and saved as a plain model."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    from workbench.train.adapters import SEQ_CLS

    task = json.loads((adapter_dir / "adapter_config.json").read_text()).get("task_type")
    model_cls = AutoModelForSequenceClassification if task == SEQ_CLS else AutoModelForCausalLM
    with _unpartitioned_loading():
        base = model_cls.from_pretrained(ctx.model_path, config=config, **ctx.model_kwargs())
        merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
        merged.save_pretrained(out_dir)


@contextlib.contextmanager
def _unpartitioned_loading():
    """While a ZeRO-3 trainer exists, from_pretrained partitions every model it loads (zero.Init), a collective
    the other ranks are not in. The merge is the main process's own, so switch that off around it."""
    from transformers.integrations import deepspeed as hf_deepspeed

    saved = hf_deepspeed._hf_deepspeed_config_weak_ref  # the Trainer's global switch; no public getter
    hf_deepspeed.unset_hf_deepspeed_config()
    try:
        yield
    finally:
        hf_deepspeed._hf_deepspeed_config_weak_ref = saved
