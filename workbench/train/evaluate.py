"""The held-out generation eval: k completions per prompt, scored by the answer checker (workbench/train/answers.py),
summarised by workbench/core/evals.py. Used by ``workbench eval`` (this module's ``main``, in a child process)
and by the [eval] section during training (workbench/train/eval_in_training.py).

``python -m workbench.train.evaluate SPEC.json``: SPEC names the data, the sampling settings and one or more
models ("jobs": the target and an optional baseline, evaluated on the same prompts one after the other); each job
writes ``<out>.json`` (the summary) and ``<out>.jsonl`` (every completion with its prompt, extracted answer and
score). Progress lines start with "[eval]". Exit 0 when every job wrote its results, 1 otherwise.

Heavy side: imports torch, transformers, datasets (and peft for an adapter folder).
"""
from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path


# -- prompts and answers out of dataset rows -------------------------------------------------------------------
def _content(value) -> str | None:
    """A reply as text: a string, or the last message of a chat list."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[-1], dict):
        return str(value[-1].get("content", ""))
    return None


def eval_items(rows, max_prompts: int = 0) -> list[dict]:
    """{"prompt" (text or chat messages), "expected" (str or None)} for each row that has a prompt (shaped rows:
    workbench.train.data.shape has turned instruction rows into messages and added the system prompt).

    The prompt is the ``prompt`` column, or a conversation up to its last assistant turn. The expected answer is
    the ``answer`` column, else the <answer> of the reference reply (completion when it is not labelled
    undesirable, chosen, or the conversation's last assistant turn)."""
    from workbench.train.answers import extract_answer

    items = []
    for row in rows:
        prompt, reference = row.get("prompt"), None
        if prompt is None and isinstance(row.get("messages"), list):
            msgs = list(row["messages"])
            last = max((i for i, m in enumerate(msgs) if m.get("role") == "assistant"), default=None)
            if last is None or last == 0:
                continue
            prompt, reference = msgs[:last], msgs[last].get("content")
        if prompt is None or prompt == "" or prompt == []:
            continue
        if reference is None and row.get("label", True) is not False:
            reference = _content(row.get("completion")) or _content(row.get("chosen"))
        expected = row.get("answer")
        if expected is None and reference is not None:
            expected = extract_answer(str(reference))
        items.append({"prompt": prompt, "expected": None if expected is None else str(expected)})
        if max_prompts and len(items) >= max_prompts:
            break
    return items


# -- generating and scoring ------------------------------------------------------------------------------------
def run(model, tokenizer, items: list[dict], k: int, temperature: float, max_new_tokens: int,
        batch_size: int = 16, progress=None, sampler=None) -> list[dict]:
    """The records of workbench.core.evals (one per completion). The model is left in eval mode. ``sampler``:
    another ``generate`` (vllm_generate.generate, with an engine as the model)."""
    from workbench.train.answers import score
    from workbench.train.generate import generate

    generate = sampler or generate
    records: list[dict] = []
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        outs = generate(model, tokenizer, [it["prompt"] for it in chunk], k=k, max_new_tokens=max_new_tokens,
                        temperature=temperature, batch_size=batch_size)
        for i, (item, completions) in enumerate(zip(chunk, outs)):
            for j, c in enumerate(completions):
                s = score(c.text, item["expected"])
                records.append({
                    "prompt_index": start + i, "sample": j, "prompt": item["prompt"],
                    "completion": c.text, "answer": s["answer"], "expected": item["expected"],
                    "correct": s["correct"], "formatted": s["formatted"], "tokens": c.tokens,
                    # ran into max_new_tokens unfinished: no eos and no closed </answer>
                    "truncated": not c.ended and c.tokens >= max_new_tokens and "</answer>" not in c.text,
                })
        if progress:
            progress(min(start + batch_size, len(items)), len(items))
    return records


def sample_rows(records: list[dict], step: int) -> list[dict]:
    """samples.jsonl rows for the monitor: the built-in rewards' values (correctness 2/0, format 1/0)."""
    rows = []
    for i, r in enumerate(records):
        rewards = {"correctness": None if r["correct"] is None else 2.0 * r["correct"],
                   "format": 1.0 if r["formatted"] else 0.0}
        rows.append({"step": step, "group": r["prompt_index"], "index": i, "prompt": r["prompt"],
                     "completion": r["completion"], "rewards": rewards,
                     "reward": sum(v for v in rewards.values() if v is not None), "advantage": None,
                     "eval": True, "answer": r["answer"], "expected": r["expected"]})
    return rows


# -- the child process of `workbench eval` --------------------------------------------------------------------
def load_rows(path: str, system_prompt: str):
    from datasets import load_dataset

    from workbench.train.data import LOADERS, shape

    p = Path(path)
    ds = load_dataset(LOADERS[p.suffix.lower()], data_files=str(p), split="train") if p.exists() else \
        load_dataset(path, split="test")
    return shape(ds, system_prompt)


def load_model(ref: str, tokenizer_ref: str | None, device):
    """A causal LM (or a LoRA adapter folder, on its base) and its tokenizer: from the folder when it has one."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from workbench.core.models import TOKENIZER_FILES

    path = _resolve(ref)
    dtype = "auto" if device.type == "cuda" else torch.float32
    folder = Path(path)
    if (folder / "adapter_config.json").is_file() and not (folder / "config.json").is_file():
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained(path, dtype=dtype)
    else:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    own = not folder.is_dir() or any((folder / n).is_file() for n in TOKENIZER_FILES)
    tokenizer = AutoTokenizer.from_pretrained(path if own or not tokenizer_ref else _resolve(tokenizer_ref))
    from workbench.train.textdecode import escape_undecodable

    return model.to(device), escape_undecodable(tokenizer)


def _resolve(ref: str) -> str:
    if ref.startswith("builtin:"):
        from workbench.train.builtin import ensure_builtin

        return str(ensure_builtin(ref.split(":", 1)[1]))
    return ref


def evaluate_job(job: dict, spec: dict, items: list[dict], device) -> dict:
    from workbench.core import evals
    from workbench.core.atomic import write_json_atomic, write_text_atomic

    started = time.time()
    label = job["label"]
    print(f"[eval] {label}: loading {job['model']}", flush=True)
    model, tokenizer, sampler, where = _sampling(job, device, int(spec.get("seed", 0)))
    records = run(model, tokenizer, items, k=spec["k"], temperature=spec["temperature"],
                  max_new_tokens=spec["max_new_tokens"], batch_size=spec["batch_size"],
                  progress=lambda done, n: print(f"[eval] {label}: {done}/{n} prompts", flush=True), sampler=sampler)
    summary = evals.summarize(records, spec["k"])
    out = Path(job["out"])
    write_text_atomic(out.with_suffix(".jsonl"), "".join(json.dumps(r) + "\n" for r in records))
    result = {"name": out.name, "target": label, "model": job["model"], "data": spec["data"],
              "system_prompt": spec.get("system_prompt", ""), "k": spec["k"], "temperature": spec["temperature"],
              "max_new_tokens": spec["max_new_tokens"], "max_prompts": spec.get("max_prompts", 0),
              "seed": spec.get("seed", 0), "device": where, "time": time.time(),
              "seconds": round(time.time() - started, 2), "role": job.get("role", "target"), "summary": summary}
    write_json_atomic(out.with_suffix(".json"), result)
    print(f"[eval] {label}: done in {result['seconds']} s", flush=True)
    if sampler is not None:
        from workbench.train import vllm_generate

        vllm_generate.close(model)
    del model
    return result


def _sampling(job: dict, device, seed: int):
    """(model, tokenizer, sampler, device label): a vLLM engine where vLLM can sample this model here
    (workbench/train/vllm_generate.py), else the transformers model and generate.generate."""
    from workbench.core.models import TOKENIZER_FILES
    from workbench.train import vllm_generate

    path = _resolve(job["model"])
    why = vllm_generate.unusable(path, device)
    if why is None:
        folder = Path(path)
        own = not folder.is_dir() or any((folder / n).is_file() for n in TOKENIZER_FILES)
        tok = path if own or not job.get("tokenizer") else _resolve(job["tokenizer"])
        print(f"[eval] {job['label']}: sampling with vLLM", flush=True)
        eng = vllm_generate.engine(path, tok, seed)
        return eng, eng.tokenizer, vllm_generate.generate, f"{device} (vLLM)"
    if device.type == "cuda":
        print(f"[eval] {job['label']}: sampling with transformers ({why})", flush=True)
    model, tokenizer = load_model(job["model"], job.get("tokenizer"), device)
    return model, tokenizer, None, str(device)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    try:
        from transformers import set_seed

        from workbench.train.generate import training_device

        rows = load_rows(spec["data"], spec.get("system_prompt", ""))
        items = eval_items(rows, spec.get("max_prompts", 0))
        if not items:
            raise ValueError(f"{spec['data']} has no rows with a prompt")
        device = training_device({})
        print(f"[eval] {len(items)} prompts x {spec['k']} samples on {device}", flush=True)
        for job in spec["jobs"]:
            set_seed(int(spec.get("seed", 0)))  # each model samples from the same starting state
            evaluate_job(job, spec, items, device)
        return 0
    except Exception as e:  # noqa: BLE001 - the parent prints the last line of the log
        traceback.print_exc()
        print(f"[eval] failed: {type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}",
              flush=True)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
