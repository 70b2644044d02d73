"""Model references and light checks: builtin:NAME, run:RUN_ID, a local folder, or a hub id.

No weights are loaded here. Built-in tiny models are built on first use by the training child
(``workbench.train.builtin``) into the workbench cache.
"""
from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

from workbench.core.paths import cache_dir, hf_hub_cache  # noqa: F401 - hf_hub_cache: validate's messages

BUILTIN_VERSION = 1
BUILTIN_MODELS = {
    "tiny-lm": "Qwen2-style causal LM, ~110k parameters, ChatML template (builds offline in seconds)",
    "tiny-chat": "tiny-lm taught the <reasoning>/<answer> format on the shipped arithmetic data (built on first "
                 "use in ~22 s): where the policy stages (GRPO, RLOO, PPO, best-of-k, distill) start",
    "tiny-teacher": "a wider tiny causal LM (hidden 128) for distillation",
    "tiny-rm": "tiny sequence-classification reward model (1 label)",
}
# Architecture of the built-ins (the training child builds them; the estimator reads the shape from here).
BUILTIN_SPECS = {
    "tiny-lm": dict(hidden=64, layers=2, heads=4),
    "tiny-chat": dict(hidden=64, layers=2, heads=4),
    "tiny-teacher": dict(hidden=128, layers=2, heads=4),
    "tiny-rm": dict(hidden=64, layers=2, heads=4),
}
BUILTIN_VOCAB = 512
TRAINED_BUILTINS = {"tiny-chat": "tiny-lm"}  # built by training the base built-in (workbench/train/tiny_chat.py)


def builtin_config(name: str) -> dict:
    spec = BUILTIN_SPECS[name]
    return {"model_type": "qwen2", "hidden_size": spec["hidden"], "intermediate_size": spec["hidden"] * 2,
            "num_hidden_layers": spec["layers"], "num_attention_heads": spec["heads"],
            "num_key_value_heads": spec["heads"], "vocab_size": BUILTIN_VOCAB, "tie_word_embeddings": True}


WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
                "pytorch_model.bin.index.json", "adapter_model.safetensors")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json")


@dataclass(frozen=True)
class ModelRef:
    kind: str  # builtin | run | local | hub
    value: str  # the builtin name, run id, absolute folder, or hub id
    raw: str


def builtin_dir(name: str) -> Path:
    return cache_dir() / "models" / f"{name}-v{BUILTIN_VERSION}"


# What RunDir.create makes: a name inside the runs directory, never a path (no "/", no "..", no leading dot).
RUN_ID_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def run_id_problem(run_id: str) -> str | None:
    """Why ``run:RUN_ID`` cannot name a run directory inside the runs directory; None when it can."""
    if RUN_ID_RE.fullmatch(run_id):
        return None
    return (f"run:{run_id} is not a run id: it must name a run directory inside the runs directory "
            "(letters, digits, '_', '.', '-'; no '/', no '..')")


def run_final(runs_dir: Path, run_id: str) -> Path:
    """The final model folder of run ``run_id``; ValueError for an id that would reach outside ``runs_dir``."""
    problem = run_id_problem(run_id)
    if problem:
        raise ValueError(problem)
    return Path(runs_dir) / run_id / "final"


def parse_model_ref(raw: str, resolve_path) -> ModelRef:
    """``resolve_path`` turns a relative path into an absolute one (the recipe's rule)."""
    if raw.startswith("builtin:"):
        return ModelRef("builtin", raw.split(":", 1)[1], raw)
    if raw.startswith("run:"):
        return ModelRef("run", raw.split(":", 1)[1], raw)
    looks_local = raw.startswith(("/", ".", "~")) or os.sep in raw and Path(os.path.expanduser(raw)).exists()
    p = resolve_path(raw)
    if looks_local or p.exists():
        return ModelRef("local", str(p), raw)
    return ModelRef("hub", raw, raw)


def folder_problems(path: Path) -> list[tuple[str, str]]:
    """(what is wrong, what to do) for a folder that should hold a transformers model."""
    if not path.exists():
        return [(f"model folder {path} does not exist", "check model.path")]
    if not path.is_dir():
        return [(f"{path} is a file, not a model folder", "point model.path at the folder holding config.json")]
    out = []
    names = {p.name for p in path.iterdir()}
    if "config.json" not in names and "adapter_config.json" not in names:
        out.append((f"{path} has no config.json", "point model.path at a folder saved with save_pretrained()"))
    if not names & set(WEIGHT_FILES) and not any(n.endswith((".safetensors", ".bin")) for n in names):
        out.append((f"{path} has no weights (*.safetensors or *.bin)", "copy the weights into the folder"))
    if not names & set(TOKENIZER_FILES):
        out.append((f"{path} has no tokenizer files", "save the tokenizer into the folder with save_pretrained()"))
    return out


def hub_cached(repo_id: str, kind: str = "models") -> Path | None:
    """The hub cache's snapshot folder for ``repo_id`` (``kind`` models | datasets), or None when not downloaded
    here. workbench/core/discovery.py owns the cache's layout."""
    from workbench.core import discovery  # local: discovery imports this module

    return discovery.hub_snapshot(repo_id, kind.removesuffix("s"))


def hub_reachable(timeout: float = 1.5) -> bool:
    """False when offline mode is set or huggingface.co cannot be reached quickly."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    host = os.environ.get("HF_ENDPOINT", "https://huggingface.co").split("://")[-1].split("/")[0]
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False
