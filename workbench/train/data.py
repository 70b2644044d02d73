"""Dataset loading for the training child: local files through `datasets`, hub ids, and the recipe's shaping.

Shaping: [data].system_prompt turns text prompts into [system, user] chat prompts (and is prepended to chat
prompts and conversations that have no system message); instruction/input/output rows become chat messages;
[data].max_samples keeps the first N rows.
"""
from __future__ import annotations

from pathlib import Path

LOADERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


def load(recipe):
    from datasets import load_dataset

    raw = recipe.get("data.path")
    split = recipe.get("data.split", "train")
    path = Path(raw).expanduser()
    if path.exists():
        ds = load_dataset(LOADERS[path.suffix.lower()], data_files=str(path), split="train")
    else:
        ds = load_dataset(raw, split=split)
    n = recipe.get("data.max_samples", 0)
    if n and n < len(ds):
        ds = ds.select(range(n))
    return shape(ds, recipe.get("data.system_prompt", ""))


def shape(ds, system_prompt: str):
    cols = set(ds.column_names)
    system = {"role": "system", "content": system_prompt} if system_prompt else None

    if {"instruction", "output"} <= cols and "messages" not in cols:
        def to_messages(row):
            user = row["instruction"] + (f"\n\n{row['input']}" if row.get("input") else "")
            msgs = ([system] if system else []) + [{"role": "user", "content": user},
                                                   {"role": "assistant", "content": row["output"]}]
            return {"messages": msgs}

        return ds.map(to_messages, remove_columns=[c for c in ("instruction", "input", "output") if c in cols])
    if system and "prompt" in cols:
        def with_system(row):
            p = row["prompt"]
            if isinstance(p, str):
                return {"prompt": [system, {"role": "user", "content": p}]}
            if p and p[0].get("role") != "system":
                return {"prompt": [system, *p]}
            return {"prompt": p}

        if "completion" in cols and isinstance(ds[0]["completion"], str) and isinstance(ds[0]["prompt"], str):
            # A text completion needs a chat completion once the prompt becomes chat.
            def both(row):
                return {"prompt": [system, {"role": "user", "content": row["prompt"]}],
                        "completion": [{"role": "assistant", "content": row["completion"]}]}
            return ds.map(both)
        return ds.map(with_system)
    if system and "messages" in cols:
        return ds.map(lambda row: {"messages": row["messages"] if row["messages"][0].get("role") == "system"
                                   else [system, *row["messages"]]})
    return ds
