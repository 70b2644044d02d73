"""What the training child picks for the machine it runs on, unless the recipe says: mixed precision for the
TrainingArguments, the dtype a model loads in, and the attention kernels.

  CPU                 use_cpu, fp32 (bf16 = fp16 = false), sdpa attention
  GPU with bf16       bf16 (torch.cuda.is_bf16_supported: Ampere and newer)
  GPU without bf16    fp16 (V100, T4); a fully trained model then loads in float32, the master weights fp16 AMP
                      needs (a bf16 checkpoint would otherwise train in bf16 on a GPU without it)
  attention           flash_attention_2 on a GPU with flash-attn installed and 16-bit weights, else sdpa

The recipe wins: [launch] mixed_precision (bf16 | fp16 | no), [train] bf16 / fp16, [model] dtype and
[model] attn_implementation. Imports torch inside the functions (the child's side only).
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path


def precision_kwargs(recipe) -> dict:
    """use_cpu / bf16 / fp16 for the trl config, before the recipe's own [train] is applied over them."""
    import torch

    if not torch.cuda.is_available():
        kw = dict(use_cpu=True, bf16=False, fp16=False)
    else:
        bf16 = bool(torch.cuda.is_bf16_supported())
        kw = dict(bf16=bf16, fp16=not bf16)
    mp = recipe.get("launch.mixed_precision", "auto")
    if mp != "auto":
        kw.update(bf16=mp == "bf16", fp16=mp == "fp16")
    train = recipe.section("train")
    if "bf16" in train or "fp16" in train:  # the recipe chose one: the other stays off unless it says so too
        kw.update(bf16=train.get("bf16", False) is True, fp16=train.get("fp16", False) is True)
    return kw


def load_dtype(recipe, trained: bool = False):
    """The dtype for from_pretrained: [model] dtype, else float32 on a CPU (and for a fully trained model under
    fp16 mixed precision), else None ("auto": the checkpoint's own dtype)."""
    import torch

    dtype = recipe.get("model.dtype", "auto")
    if dtype != "auto":
        return getattr(torch, dtype)
    if not torch.cuda.is_available():
        return torch.float32
    full = recipe.get("peft.method", "full") == "full"
    if trained and full and precision_kwargs(recipe)["fp16"]:
        return torch.float32
    return None


def attention_implementation(recipe, model_path: str | None = None, dtype=None) -> str:
    """[model] attn_implementation, else flash_attention_2 where it can run (a CUDA GPU, flash-attn installed, the
    weights in 16 bits: ``dtype``, or the checkpoint's config when None), else sdpa."""
    import torch

    chosen = recipe.get("model.attn_implementation", "auto")
    if chosen and chosen != "auto":
        return chosen
    if torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None and \
            _sixteen_bit(dtype, model_path):
        return "flash_attention_2"
    return "sdpa"


def _sixteen_bit(dtype, model_path: str | None) -> bool:
    import torch

    if dtype is not None:
        return dtype in (torch.bfloat16, torch.float16)
    folder = Path(model_path) if model_path else None
    if folder is not None and not folder.is_dir():  # a hub id: its cached snapshot
        from workbench.core.discovery import hub_snapshot

        folder = hub_snapshot(str(model_path))
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8")) if folder else {}
    except (OSError, ValueError):
        config = {}
    return str(config.get("dtype") or config.get("torch_dtype") or "") in ("bfloat16", "float16")
