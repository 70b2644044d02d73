"""`workbench eval`'s vLLM path (workbench/train/vllm_generate.py): chosen only with vllm, a GPU and a full model;
its output is generate.generate's (k Completions per prompt from the same prompt tokens). vLLM is a stand-in here."""
from __future__ import annotations

import sys
from types import ModuleType, SimpleNamespace

from workbench.train import evaluate, vllm_generate



class Device(SimpleNamespace):  # what torch.device shows of itself here
    def __str__(self) -> str:
        return self.type


CUDA, CPU = Device(type="cuda"), Device(type="cpu")


def test_when_vllm_samples(tmp_path, monkeypatch):
    monkeypatch.delenv("WORKBENCH_EVAL_VLLM", raising=False)
    monkeypatch.setattr(vllm_generate, "_installed", lambda: True)
    assert vllm_generate.unusable(str(tmp_path), CPU) == "no GPU"
    assert vllm_generate.unusable(str(tmp_path), CUDA) is None
    (tmp_path / "adapter_config.json").write_text("{}")
    assert "adapter folder" in vllm_generate.unusable(str(tmp_path), CUDA)
    monkeypatch.setenv("WORKBENCH_EVAL_VLLM", "0")
    assert "turned off" in vllm_generate.unusable("org/model", CUDA)
    monkeypatch.delenv("WORKBENCH_EVAL_VLLM")
    monkeypatch.setattr(vllm_generate, "_installed", lambda: False)
    assert "not installed" in vllm_generate.unusable("org/model", CUDA)


class Tokenizer:
    chat_template = None  # chat_prompt then joins the messages' text

    def __call__(self, text, add_special_tokens=True):
        assert add_special_tokens is False
        return {"input_ids": [ord(ch) for ch in text]}


def test_generate_maps_vllm_outputs_to_completions(monkeypatch):
    seen = {}

    class SamplingParams:
        def __init__(self, **kw):
            seen["params"] = kw

    class LLM:
        def generate(self, prompts, params, use_tqdm=True):
            seen["prompts"] = prompts
            out = SimpleNamespace(text="<answer>2</answer>", token_ids=[5, 6, 0], finish_reason="stop")
            cut = SimpleNamespace(text="<reas", token_ids=[7, 8], finish_reason="length")
            return [SimpleNamespace(outputs=[out, cut]) for _ in prompts]

    fake = ModuleType("vllm")
    fake.SamplingParams = SamplingParams
    monkeypatch.setitem(sys.modules, "vllm", fake)
    outs = vllm_generate.generate(vllm_generate.Engine(LLM(), Tokenizer(), seed=3), Tokenizer(),
                                  ["1+1?", [{"role": "user", "content": "2+2?"}]], k=2, max_new_tokens=2,
                                  temperature=0.7, batch_size=16)
    assert seen["params"] == {"n": 2, "temperature": 0.7, "max_tokens": 2, "seed": 3}
    assert seen["prompts"][0] == {"prompt_token_ids": [ord(ch) for ch in "1+1?\n"]}
    assert [(c.text, c.tokens, c.ended) for c in outs[1]] == [("<answer>2</answer>", 3, True), ("<reas", 2, False)]


def test_eval_job_picks_the_path(tmp_path, monkeypatch):
    monkeypatch.setattr(vllm_generate, "unusable", lambda path, device: None if device.type == "cuda" else "no GPU")
    monkeypatch.setattr(vllm_generate, "engine", lambda path, tok, seed: vllm_generate.Engine("llm", "tok", seed))
    monkeypatch.setattr(evaluate, "load_model", lambda ref, tok, device: ("hf-model", "hf-tok"))
    job = {"model": str(tmp_path), "label": "target"}
    assert evaluate._sampling(job, CUDA, 0)[2:] == (vllm_generate.generate, "cuda (vLLM)")
    assert evaluate._sampling(job, CPU, 0) == ("hf-model", "hf-tok", None, "cpu")
