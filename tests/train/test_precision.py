"""The training child's choices for the machine, with torch.cuda monkeypatched: mixed precision (bf16 where the GPU
has it, else fp16; fp32 on a CPU), the load dtype, and the attention kernels; the recipe always wins."""
from __future__ import annotations

import importlib.util
import json

import pytest

torch = pytest.importorskip("torch")

from workbench.core.recipe import Recipe  # noqa: E402
from workbench.core.rundir import RunDir  # noqa: E402
from workbench.train import precision  # noqa: E402
from workbench.train.entry import train_kwargs  # noqa: E402


def recipe(*sets: str) -> Recipe:
    r = Recipe.parse('[run]\nstage = "sft"\n[model]\npath = "builtin:tiny-lm"\n[data]\npath = "d.jsonl"\n')
    r.apply_overrides(list(sets))
    return r


@pytest.fixture
def gpu(monkeypatch):
    """``gpu(bf16=True, flash=False)``: this process sees a CUDA GPU (with or without bf16, flash-attn)."""

    def make(bf16: bool = True, flash: bool = False):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
        real = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec",
                            lambda name, *a: (object() if flash else None) if name == "flash_attn" else real(name, *a))

    return make


def test_cpu_trains_in_fp32_with_sdpa(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert precision.precision_kwargs(recipe()) == {"use_cpu": True, "bf16": False, "fp16": False}
    assert precision.load_dtype(recipe(), trained=True) is torch.float32
    assert precision.attention_implementation(recipe()) == "sdpa"


def test_gpu_with_bf16_trains_in_bf16(gpu):
    gpu(bf16=True)
    assert precision.precision_kwargs(recipe()) == {"bf16": True, "fp16": False}
    assert precision.load_dtype(recipe(), trained=True) is None, "the checkpoint's own dtype"


def test_gpu_without_bf16_trains_in_fp16_with_fp32_master_weights(gpu):
    gpu(bf16=False)
    assert precision.precision_kwargs(recipe()) == {"bf16": False, "fp16": True}
    assert precision.load_dtype(recipe(), trained=True) is torch.float32, "fp16 AMP needs fp32 master weights"
    assert precision.load_dtype(recipe('peft.method="lora"'), trained=True) is None, "a frozen base stays as it is"
    assert precision.load_dtype(recipe(), trained=False) is None


def test_the_recipe_says_otherwise(gpu, tmp_path):
    gpu(bf16=True)
    assert precision.precision_kwargs(recipe('launch.mixed_precision="fp16"')) == {"bf16": False, "fp16": True}
    assert precision.precision_kwargs(recipe('launch.mixed_precision="no"')) == {"bf16": False, "fp16": False}
    assert precision.precision_kwargs(recipe("train.fp16=true")) == {"bf16": False, "fp16": True}
    assert precision.load_dtype(recipe('model.dtype="bfloat16"')) is torch.bfloat16
    rd = RunDir(tmp_path / "run")
    kw = train_kwargs(recipe("train.bf16=false", "train.max_steps=3"), rd)
    assert (kw["bf16"], kw["fp16"], kw["max_steps"]) == (False, False, 3) and "use_cpu" not in kw
    assert train_kwargs(recipe(), rd)["bf16"] is True and train_kwargs(recipe(), rd)["report_to"] == "none"
    assert train_kwargs(recipe('peft.method="prefix"'), rd)["gradient_checkpointing"] is False
    assert "gradient_checkpointing" not in train_kwargs(recipe('peft.method="lora"'), rd), "trl's default (on)"


def test_attention_flash_where_it_can_run(gpu, tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"dtype": "bfloat16"}))
    gpu(bf16=True, flash=False)
    assert precision.attention_implementation(recipe(), str(folder)) == "sdpa"
    gpu(bf16=True, flash=True)
    assert precision.attention_implementation(recipe(), str(folder)) == "flash_attention_2"
    assert precision.attention_implementation(recipe(), str(folder), torch.float32) == "sdpa", "fp32 weights"
    (folder / "config.json").write_text(json.dumps({"dtype": "float32"}))
    assert precision.attention_implementation(recipe(), str(folder)) == "sdpa"
    assert precision.attention_implementation(recipe(), str(folder), torch.bfloat16) == "flash_attention_2"
    assert precision.attention_implementation(recipe('model.attn_implementation="eager"'), str(folder),
                                              torch.bfloat16) == "eager"


def test_context_model_kwargs_carry_dtype_and_attention(gpu, tmp_path, monkeypatch):
    from workbench.train.entry import Context

    gpu(bf16=False)
    rd = RunDir(tmp_path / "run")
    ctx = Context(recipe(), rd, True, str(tmp_path))
    monkeypatch.setattr(ctx, "trust_remote_code", lambda: False)
    assert ctx.model_kwargs(trained=True) == {"trust_remote_code": False, "dtype": torch.float32,
                                              "attn_implementation": "sdpa"}
    assert ctx.model_kwargs() == {"trust_remote_code": False, "attn_implementation": "sdpa"}


def test_qlora_loads_the_trained_model_in_4bit_only(gpu, tmp_path, monkeypatch):
    from workbench.train.entry import Context

    gpu(bf16=True)
    monkeypatch.setenv("LOCAL_RANK", "1")
    ctx = Context(recipe('peft.method="qlora"'), RunDir(tmp_path / "run"), True, str(tmp_path))
    monkeypatch.setattr(ctx, "trust_remote_code", lambda: False)
    kw = ctx.model_kwargs(trained=True)
    q = kw["quantization_config"]
    assert q.load_in_4bit and q.bnb_4bit_quant_type == "nf4" and q.bnb_4bit_use_double_quant
    assert q.bnb_4bit_compute_dtype is torch.bfloat16 and kw["dtype"] is torch.bfloat16
    assert kw["device_map"] == {"": 1}, "this process's GPU"
    assert "quantization_config" not in ctx.model_kwargs(), "frozen models and the merge load unquantized"
