"""Sampling with vLLM for `workbench eval` (workbench/train/evaluate.py): used when vllm is installed, the eval
runs on a GPU and the model is one vLLM loads itself (a model folder or a hub id; an adapter folder keeps the
transformers path). The same output as workbench.train.generate.generate: k Completions per prompt, from the same
chat-templated prompt tokens (no special tokens added), so scores are comparable between the two paths.

WORKBENCH_EVAL_VLLM=0 turns it off (transformers' generate then samples, as on a CPU). The engine takes
EVAL_GPU_SHARE of the GPU, so that the baseline's engine of the same `workbench eval` fits beside what the
target's left behind. Heavy side: imports vllm only inside the functions.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

EVAL_GPU_SHARE = 0.4


def _installed() -> bool:
    try:
        return importlib.util.find_spec("vllm") is not None
    except ValueError:  # a module put into sys.modules by hand (tests) has no spec
        return "vllm" in sys.modules


def unusable(path: str, device) -> str | None:
    """Why vLLM cannot sample for this model here (None: it can)."""
    if os.environ.get("WORKBENCH_EVAL_VLLM", "1") == "0":
        return "turned off (WORKBENCH_EVAL_VLLM=0)"
    if getattr(device, "type", "cpu") != "cuda":
        return "no GPU"
    if not _installed():
        return "vllm is not installed (pip install 'workbench[vllm]')"
    folder = Path(path)
    if (folder / "adapter_config.json").is_file() and not (folder / "config.json").is_file():
        return "an adapter folder (vLLM loads full models)"
    return None


@dataclass
class Engine:
    llm: object
    tokenizer: object
    seed: int = 0


def engine(path: str, tokenizer_path: str, seed: int = 0) -> Engine:
    from transformers import AutoTokenizer
    from vllm import LLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    llm = LLM(model=path, tokenizer=tokenizer_path, gpu_memory_utilization=EVAL_GPU_SHARE, seed=seed,
              dtype="auto")
    return Engine(llm, tokenizer, seed)


def generate(eng: Engine, tokenizer, prompts: list, k: int, max_new_tokens: int, temperature: float,
             batch_size: int):
    """k Completions for each prompt (text or chat messages), like generate.generate (batch_size: vLLM batches
    by itself)."""
    from vllm import SamplingParams

    from workbench.train.generate import Completion, chat_prompt

    ids = [tokenizer(chat_prompt(tokenizer, p), add_special_tokens=False)["input_ids"] for p in prompts]
    params = SamplingParams(n=k, temperature=max(float(temperature), 0.0), max_tokens=max_new_tokens,
                            seed=eng.seed)
    outs = eng.llm.generate([{"prompt_token_ids": x} for x in ids], params, use_tqdm=False)
    return [[Completion(c.text, len(c.token_ids), c.finish_reason == "stop") for c in o.outputs] for o in outs]


def close(eng: Engine) -> None:
    """Free the GPU memory the engine holds (best effort: vLLM keeps some until the process ends)."""
    import gc

    eng.llm = None
    gc.collect()
    try:
        import torch

        torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - nothing more to free
        pass
