"""The memory estimator against the ZeRO paper's figures, DeepSpeed's own estimate functions, and real models."""
from __future__ import annotations

import subprocess

import pytest

from tests.conftest import RECIPES, workbench_cmd
from workbench.core import estimate as est
from workbench.core.models import builtin_config

GB = 1e9


@pytest.mark.parametrize("zero,expected_gb", [(0, 120.0), (1, 31.4), (2, 16.6), (3, 1.9)])
def test_zero_paper_figure_1(zero, expected_gb):
    """Rajbhandari et al. 2020, Figure 1: 7.5B parameters, 64 GPUs, mixed-precision Adam (K = 12)."""
    e = est.estimate(int(7.5e9), gpus=64, zero=zero)
    assert e.gpu_model_states / GB == pytest.approx(expected_gb, abs=0.05)


@pytest.mark.parametrize("params,gpus,nodes", [(int(7e9), 8, 1), (int(1.3e9), 16, 2), (int(70e9), 64, 8)])
@pytest.mark.parametrize("offload", [False, True])
def test_agrees_with_deepspeed_zero2_estimate(params, gpus, nodes, offload):
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

    _, ds_gpu = estimate_zero2_model_states_mem_needs(params, num_gpus_per_node=gpus // nodes, num_nodes=nodes,
                                                      cpu_offload=offload)
    ours = est.estimate(params, gpus=gpus, nodes=nodes, zero=2, offload_optimizer=offload, accounting="deepspeed")
    assert ours.gpu_model_states == pytest.approx(ds_gpu, rel=1e-6)


@pytest.mark.parametrize("offload_opt,offload_params", [(False, False), (True, False), (True, True)])
def test_agrees_with_deepspeed_zero3_estimate(offload_opt, offload_params):
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs

    shape = est.shape_from_config({"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
                                   "intermediate_size": 11008, "vocab_size": 32000, "tie_word_embeddings": False})
    _, ds_gpu, _ = estimate_zero3_model_states_mem_needs(shape.params, shape.largest_layer, num_gpus_per_node=8,
                                                         cpu_offload=offload_opt, cpu_offload_params=offload_params)
    ours = est.estimate(shape.params, gpus=8, zero=3, shape=shape, offload_optimizer=offload_opt,
                        offload_params=offload_params, accounting="deepspeed")
    assert ours.gpu_model_states == pytest.approx(ds_gpu, rel=1e-6)


def test_llama_7b_config_counts_its_parameters():
    shape = est.shape_from_config({"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
                                   "intermediate_size": 11008, "vocab_size": 32000, "tie_word_embeddings": False})
    assert shape.params == 6_738_415_616  # Llama-2-7B's published count


def test_lora_shrinks_gradients_and_optimizer_only():
    full = est.estimate(int(7e9), gpus=1)
    lora = est.estimate(int(7e9), gpus=1, trainable=int(40e6))
    assert lora.parts["weights"] == full.parts["weights"]
    assert lora.parts["optimizer"] == pytest.approx(12 * 40e6)
    assert lora.gpu_model_states < full.gpu_model_states / 7


def test_builtin_shape_matches_the_built_model_and_peft(tmp_path):
    """Formula vs the real weights (safetensors header) and peft's own count of LoRA parameters."""
    import torch  # noqa: F401 - heavy imports are fine in this test, never in the light side
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = builtin_config("tiny-lm")
    model = Qwen2ForCausalLM(Qwen2Config(**cfg))
    model.save_pretrained(tmp_path)
    shape = est.shape_from_config(cfg)
    assert shape.params == est.safetensors_params(tmp_path) == sum(p.numel() for p in model.parameters())
    peft_model = get_peft_model(model, LoraConfig(r=8, target_modules="all-linear"))
    trainable, _ = peft_model.get_nb_trainable_parameters()
    assert est.lora_trainable(shape, 8) == trainable


def test_cli_estimate_warns_above_gpu_size():
    proc = subprocess.run(workbench_cmd("estimate", "--params", "7e9", "--gpus", "1"), capture_output=True,
                          text=True)
    assert proc.returncode == 0 and "112.00 GB per GPU" in proc.stdout and "WARNING: exceeds a 80 GB GPU" in proc.stdout
    proc = subprocess.run(workbench_cmd("estimate", "--params", "7e9", "--gpus", "8", "--zero", "3"),
                          capture_output=True, text=True)
    assert "WARNING" not in proc.stdout and "14.00 GB per GPU" in proc.stdout


def test_cli_estimate_of_a_recipe_with_lora():
    proc = subprocess.run(workbench_cmd("estimate", str(RECIPES / "grpo-tiny.toml"), "--set", 'peft.method="lora"'),
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "trainable" in proc.stdout and "LoRA adapter" in proc.stdout


GQA = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 3,
       "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 512, "tie_word_embeddings": False}


@pytest.mark.parametrize("cfg", [builtin_config("tiny-lm"), GQA], ids=["qwen2", "llama-gqa"])
def test_every_adapter_method_counts_what_peft_trains(cfg):
    """The estimator's trainable parameters per [peft] method against peft's own count of the built adapter."""
    from peft import IA3Config, LoraConfig, PrefixTuningConfig, PromptTuningConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    built = {
        ("lora", ()): LoraConfig(r=4, target_modules="all-linear"),
        ("dora", ()): LoraConfig(r=4, target_modules="all-linear", use_dora=True),
        ("qlora", (("target_modules", ("q_proj", "v_proj")),)): LoraConfig(r=4, target_modules=["q_proj", "v_proj"]),
        ("ia3", ()): IA3Config(),
        ("ia3", (("target_modules", "all-linear"),)): IA3Config(target_modules="all-linear"),
        ("ia3", (("target_modules", ("k_proj", "down_proj")), ("feedforward_modules", ("down_proj",)))):
            IA3Config(target_modules=["k_proj", "down_proj"], feedforward_modules=["down_proj"]),
        ("prompt", ()): PromptTuningConfig(num_virtual_tokens=5),
        ("prefix", ()): PrefixTuningConfig(num_virtual_tokens=5),
    }
    shape = est.shape_from_config(cfg)
    config = AutoConfig.for_model(**cfg)
    for (method, extra), peft_cfg in built.items():
        peft_cfg.task_type = "CAUSAL_LM"
        model = get_peft_model(AutoModelForCausalLM.from_config(config), peft_cfg)
        trainable, total = model.get_nb_trainable_parameters()
        section = {"r": 4, "num_virtual_tokens": 5, **dict(extra)}
        assert est.adapter_trainable(shape, method, section) == trainable, (method, extra)
    assert est.adapter_trainable(shape, "full", {}) is None


def recipe_estimate(*sets: str):
    from workbench.core.recipe import Recipe

    r = Recipe.parse('[run]\nstage = "sft"\n[model]\npath = "x"\n[data]\npath = "d.jsonl"\n[train]\nmax_length = 4096\n'
                     "per_device_train_batch_size = 4\n")
    r.apply_overrides(list(sets))
    llama_8b = est.shape_from_config({"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
                                      "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256,
                                      "tie_word_embeddings": False, "model_type": "llama"})
    est_recipe_shape, est.recipe_shape = est.recipe_shape, lambda recipe, runs_dir: llama_8b
    try:
        return est.estimate_recipe(r), llama_8b
    finally:
        est.recipe_shape = est_recipe_shape


def test_qlora_base_is_four_bit_and_gradient_checkpointing_shrinks_activations():
    lora, shape = recipe_estimate('peft.method="lora"')
    qlora, _ = recipe_estimate('peft.method="qlora"')
    full, _ = recipe_estimate()
    assert lora.parts["weights"] == pytest.approx(2 * shape.params) and lora.precision == "bf16/fp16"
    dense = 2 * 128256 * 4096  # embeddings and the untied output layer stay 16-bit
    assert qlora.parts["weights"] == pytest.approx(est.NF4_BYTES * (shape.params - dense) + 2 * dense)
    assert qlora.parts["weights"] / GB == pytest.approx(5.7, abs=0.05)  # Llama-3-8B: 3.6 GB in 4 bits + 2.1 GB 16-bit ends
    assert "4-bit" in qlora.precision and "4-bit NF4 base" in qlora.table()
    assert qlora.trainable == lora.trainable and qlora.parts["optimizer"] == lora.parts["optimizer"]
    assert recipe_estimate('peft.method="lora"', 'model.dtype="float32"')[0].parts["weights"] == 4 * shape.params

    # trl turns gradient checkpointing on by default: each layer keeps only its input (b * s * h, 2 bytes)
    off, _ = recipe_estimate("train.gradient_checkpointing=false")
    b, s, h, a = 4, 4096, 4096, 32
    one_layer = 34 * b * s * h + 5 * a * s * s * b
    assert off.activations == 32 * one_layer and not off.checkpointing
    assert full.activations == 32 * 2 * b * s * h + one_layer and full.checkpointing
    assert "gradient checkpointing" in full.table()
    prefix, _ = recipe_estimate('peft.method="prefix"')
    assert not prefix.checkpointing, "the child turns checkpointing off for prefix tuning"
    assert prefix.trainable == 16 * 32 * 2 * 8 * 128
