"""ZeRO-3 on a model big enough to be partitioned: final/ must hold the gathered weights.

Every tensor of the built-in tiny models is below DeepSpeed's stage3_param_persistence_threshold (1e5
elements), so ZeRO-3 partitions nothing there and a save that skips the gather still looks right. This Qwen2
(hidden 512, intermediate 1024, 2 layers, the built-in tokenizer: 5.5M parameters, 15 tensors over the
threshold) is partitioned across 2 gloo processes; 3 SFT steps take about 80 s on 2 cores (FINDINGS.md), plus
~30 s the first time DeepSpeed JIT-builds shm_comm into TORCH_EXTENSIONS_DIR.
"""
from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import RECIPES, workbench_cmd
from workbench.core.rundir import RunDir

pytestmark = pytest.mark.e2e

HIDDEN, INTERMEDIATE = 512, 1024


@pytest.fixture
def partitioned_model(tmp_path):
    """A randomly initialised Qwen2 causal LM whose large tensors ZeRO-3 partitions, saved with the tokenizer."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from workbench.train.builtin import ensure_builtin

    tok = AutoTokenizer.from_pretrained(ensure_builtin("tiny-lm"))
    config = Qwen2Config(vocab_size=len(tok), hidden_size=HIDDEN, intermediate_size=INTERMEDIATE,
                         num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=8,
                         max_position_embeddings=512, tie_word_embeddings=True, pad_token_id=tok.pad_token_id,
                         eos_token_id=tok.eos_token_id, bos_token_id=None)
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    assert sum(p.numel() > 100_000 for p in model.parameters()) == 15, "tensors above the persistence threshold"
    path = tmp_path / "qwen2-h512"
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_zero3_two_processes_final_model_holds_the_gathered_weights(runs_dir, partitioned_model):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    sets = [f'model.path="{partitioned_model}"', 'launch.backend="deepspeed"', "launch.zero_stage=3",
            "launch.num_processes=2", "train.max_steps=3", "train.save_steps=3", "train.logging_steps=1"]
    args = ["--runs-dir", str(runs_dir), "run", str(RECIPES / "sft-tiny.toml")]
    for s in sets:
        args += ["--set", s]
    proc = subprocess.run(workbench_cmd(*args), capture_output=True, text=True, timeout=600)
    (path,) = [p for p in runs_dir.iterdir() if p.is_dir()]
    rd = RunDir(path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:] + rd.stdout_path.read_text()[-3000:]
    assert rd.read_status()["state"] == "completed", rd.read_status()
    assert json.loads((rd.path / "ds_config.json").read_text())["zero_optimization"]["stage"] == 3

    final = load_file(rd.final_model / "model.safetensors")
    gathered = load_file(rd.checkpoints / "checkpoint-3" / "model.safetensors")  # the Trainer's own save
    initial = load_file(partitioned_model / "model.safetensors")
    assert set(final) == set(gathered) == set(initial)
    for name, tensor in final.items():
        assert tensor.shape == initial[name].shape, f"{name}: {tuple(tensor.shape)} (a partition, not gathered)"
        assert tensor.equal(gathered[name]), name
    assert any(not final[n].equal(initial[n]) for n in final), "3 steps of training changed the weights"

    model = AutoModelForCausalLM.from_pretrained(rd.final_model)
    assert model.model.layers[0].mlp.up_proj.weight.shape == (INTERMEDIATE, HIDDEN)
    assert model.model.embed_tokens.weight.shape == (initial["model.embed_tokens.weight"].shape[0], HIDDEN)
    assert (rd.final_model / "tokenizer.json").is_file()
    assert not rd.final_model.with_name("final.tmp").exists()
