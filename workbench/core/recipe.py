"""A recipe: one TOML file that fully describes a run. Loading, overrides, saving (comments kept, atomic).

Sections and their keys (the keys under [train] are the trl config class's own field names):
  [run]     name, stage, seed, format_version, description
  [model]   path (builtin:NAME | run:RUN_ID | local folder | hub id), trust_remote_code, dtype, from_scratch,
            teacher, reward_model (same reference forms), attn_implementation
  [data]    path (local jsonl/json/csv/parquet or hub id), split, system_prompt, max_samples
  [peft]    method (full | lora | dora | qlora | ia3 | prompt | prefix), r, alpha, dropout, target_modules,
            feedforward_modules, num_virtual_tokens
  [rewards] funcs (built-in names or "path/to/file.py:function"), weights
  [generate] k, max_new_tokens, temperature, threshold, batch_size (best-of-K and offline distillation)
  [eval]    data, every_steps, k, temperature, max_new_tokens, max_prompts, batch_size, on_start (held-out
            generation eval during training; also trl's eval_dataset for sft/pretrain/reward/dpo/kto)
  [train]   passed to the stage's trl config class after validation
  [launch]  backend, num_processes, zero_stage
  [vllm]    server_gpus, port, startup_timeout, args (GRPO/RLOO with train.vllm_mode = "server": the workbench
            starts `trl vllm-serve`; trl's own vLLM fields stay in [train])

Relative paths in a recipe are resolved against the recipe file's folder first, then the current directory; the
frozen copy in a run directory holds absolute paths.
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from workbench.core import comments
from workbench.core.atomic import write_text_atomic
from workbench.core.peft_methods import METHODS as PEFT_METHODS
from workbench.core.problems import BadInput, Problem

FORMAT_VERSION = 1


@dataclass(frozen=True)
class KeySpec:
    kinds: tuple[str, ...]
    default: Any = None
    help: str = ""
    choices: tuple = ()
    minimum: float | None = None
    maximum: float | None = None


# Our own sections ([train] is checked against trl's schema instead).
SECTIONS: dict[str, dict[str, KeySpec]] = {
    "run": {
        "name": KeySpec(("str",), None, "a short name for the run; the run id starts with it"),
        "stage": KeySpec(("str",), None, "the training stage"),
        "seed": KeySpec(("int",), 0, "random seed", minimum=0),
        "format_version": KeySpec(("int",), FORMAT_VERSION, "recipe format version", minimum=1),
        "description": KeySpec(("str",), "", "free text"),
    },
    "model": {
        "path": KeySpec(("str",), None, "builtin:NAME, run:RUN_ID, a local model folder, or a hub id"),
        "trust_remote_code": KeySpec(("bool",), False, "run Python code shipped with the model (off unless you trust it)"),
        "dtype": KeySpec(("str",), "auto", "weights dtype", choices=("auto", "float32", "bfloat16", "float16")),
        "from_scratch": KeySpec(("bool",), False, "pretrain: take only the config, start from fresh weights"),
        "teacher": KeySpec(("str",), None, "distillation teacher (same reference forms as path)"),
        "reward_model": KeySpec(("str",), None, "PPO / best-of-K reward model (builtin:tiny-rm, run:ID, folder)"),
        "attn_implementation": KeySpec(("str",), "auto", "attention kernels: auto = flash_attention_2 on a GPU "
                                       "with flash-attn installed, else sdpa",
                                       choices=("auto", "sdpa", "eager", "flash_attention_2", "flash_attention_3",
                                                "flex_attention")),
    },
    "data": {
        "path": KeySpec(("str",), None, "a local jsonl/json/csv/parquet file, or a hub dataset id"),
        "split": KeySpec(("str",), "train", "dataset split"),
        "system_prompt": KeySpec(("str",), "", "prepended as a system message to text prompts"),
        "max_samples": KeySpec(("int",), 0, "use only the first N rows (0 = all)", minimum=0),
    },
    "peft": {
        "method": KeySpec(("str",), "full", "full fine-tuning or an adapter (core/peft_methods.py)",
                          choices=tuple(PEFT_METHODS)),
        "r": KeySpec(("int",), 8, "LoRA rank (lora, dora, qlora)", minimum=1),
        "alpha": KeySpec(("int", "float"), 16, "LoRA alpha (scale = alpha / r)", minimum=0),
        "dropout": KeySpec(("float",), 0.0, "LoRA dropout", minimum=0, maximum=1),
        "target_modules": KeySpec(("list", "str"), "all-linear", "modules to adapt (lora/dora/qlora: default "
                                  "all-linear; ia3: peft's defaults for the architecture)"),
        "feedforward_modules": KeySpec(("list", "str"), None, "ia3: target modules scaled on their input (the "
                                       "MLP's down projection); default: the targets among peft's MLP names"),
        "num_virtual_tokens": KeySpec(("int",), 16, "prompt / prefix tuning: trained virtual tokens", minimum=1),
    },
    "rewards": {
        "funcs": KeySpec(("list",), [], "built-in names (format, correctness, length) or 'file.py:function'"),
        "weights": KeySpec(("list",), [], "one weight per reward function (default 1.0 each)"),
    },
    "generate": {
        "k": KeySpec(("int",), 4, "completions per prompt (best-of-K)", minimum=1),
        "max_new_tokens": KeySpec(("int",), 48, "tokens per completion", minimum=1),
        "temperature": KeySpec(("float",), 0.9, "sampling temperature (0 = greedy)", minimum=0),
        "threshold": KeySpec(("float",), 0.0, "best-of-K keeps a prompt's best completion only if its reward "
                             "is at least this"),
        "batch_size": KeySpec(("int",), 16, "prompts per generation batch", minimum=1),
    },
    "eval": {  # workbench/core/rules_eval.py: what each key means for each stage, and the checks
        "data": KeySpec(("str",), "", "held-out prompts (+ answer) for the generation eval; a file in the stage's "
                        "format also becomes trl's eval_dataset; omitted: the last rows of [data] are held out"),
        "every_steps": KeySpec(("int",), 0, "evaluate every N training steps, and at the end (0: only at the "
                               "start and the end)", minimum=0),
        "k": KeySpec(("int",), 4, "samples per prompt (pass@k, maj@k)", minimum=1),
        "temperature": KeySpec(("float",), 0.7, "sampling temperature (0 = greedy)", minimum=0),
        "max_new_tokens": KeySpec(("int",), 64, "tokens per completion", minimum=1),
        "max_prompts": KeySpec(("int",), 32, "prompts evaluated (0 = all of [eval] data); without [eval] data, "
                               "how many rows of [data] are held out (at most a fifth)", minimum=0),
        "batch_size": KeySpec(("int",), 16, "prompts per generation batch", minimum=1),
        "on_start": KeySpec(("bool",), True, "also evaluate before the first step (where the curves start)"),
    },
    "train": {},
    "launch": {
        "backend": KeySpec(("str",), "python", "how the child is started",
                           choices=("python", "torchrun", "accelerate", "deepspeed")),
        "num_processes": KeySpec(("int",), 1, "processes (GPUs) per machine", minimum=1),
        "num_machines": KeySpec(("int",), 1, "machines (nodes)", minimum=1),
        "machine_rank": KeySpec(("int",), 0, "this machine's rank (0 = main)", minimum=0),
        "main_address": KeySpec(("str",), "", "address of the rank-0 machine (multi-node)"),
        "main_port": KeySpec(("int",), 29500, "port on the rank-0 machine", minimum=1, maximum=65535),
        "hostfile": KeySpec(("str",), "", "DeepSpeed hostfile (multi-node with the deepspeed launcher)"),
        "zero_stage": KeySpec(("int",), 0, "DeepSpeed ZeRO stage (0 = plain data parallel)", minimum=0, maximum=3),
        "offload_optimizer": KeySpec(("bool",), False, "ZeRO: optimizer states (and gradients) in CPU memory"),
        "offload_params": KeySpec(("bool",), False, "ZeRO-3: parameters in CPU memory"),
        "mixed_precision": KeySpec(("str",), "auto", "auto = bf16 on GPUs that have it, fp32 on CPU",
                                   choices=("auto", "no", "bf16", "fp16")),
        "gpu_memory_gb": KeySpec(("int", "float"), 80, "GPU size the memory estimate is checked against",
                                 minimum=1),
    },
    "vllm": {  # the vLLM server the workbench starts in server mode (workbench/core/vllm_server.py, rules_vllm.py)
        "server_gpus": KeySpec(("list",), [], "GPU indices for `trl vllm-serve` (train.vllm_mode = \"server\"); "
                               "the trainer gets the others"),
        "port": KeySpec(("int",), 0, "the server's loopback port (0 = a free one at start)", minimum=0,
                        maximum=65535),
        "startup_timeout": KeySpec(("int", "float"), 600, "seconds to wait for the server's /health", minimum=1),
        "args": KeySpec(("list",), [], "extra arguments for `trl vllm-serve` (forwarded to `vllm serve`)"),
    },
}
REQUIRED = (("run", "stage"), ("model", "path"), ("data", "path"))
PATH_KEYS = ("data.path", "model.path", "model.teacher", "model.reward_model")  # may name local files


class Recipe:
    """A parsed recipe. ``doc`` keeps the TOML document (comments, order) for saving; ``data`` is plain dicts."""

    def __init__(self, text: str, path: Path | None = None):
        self.path = Path(path).resolve() if path else None
        self.text = text
        self.doc = tomlkit.parse(text)
        self.data: dict = self.doc.unwrap()
        self.overridden: set[str] = set()  # keys set by --set (no line in the file)

    # -- loading -------------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike) -> "Recipe":
        path = Path(path)
        name = str(path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise BadInput(Problem(name, "", "recipe file not found",
                                   "check the path, or create one with `workbench new grpo > my.toml`"))
        except IsADirectoryError:
            raise BadInput(Problem(name, "", "is a folder, not a recipe file", "give the path of a .toml file"))
        except PermissionError:
            raise BadInput(Problem(name, "", "cannot be read (permission denied)", "check the file's permissions"))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            line = raw[: e.start].count(b"\n") + 1
            raise BadInput(Problem(name, "", f"is not UTF-8 text (byte {e.start})", "save the file as UTF-8",
                                   line=line))
        return cls.parse(text, path)

    @classmethod
    def parse(cls, text: str, path: str | os.PathLike | None = None) -> "Recipe":
        name = str(path) if path else "<recipe>"
        try:
            tomllib.loads(text)  # strict parser with line/column in its messages
        except tomllib.TOMLDecodeError as e:
            msg = str(e)
            m = re.search(r"line (\d+)", msg)
            raise BadInput(Problem(name, "", f"is not valid TOML: {msg}", "fix the syntax at that line",
                                   line=int(m.group(1)) if m else None))
        return cls(text, path)

    # -- access --------------------------------------------------------------------------------------------
    @property
    def display_name(self) -> str:
        return str(self.path) if self.path else "<recipe>"

    @property
    def stage(self) -> str:
        return str(self.get("run.stage", ""))

    @property
    def name(self) -> str:
        n = self.get("run.name")
        if n:
            return str(n)
        return self.path.stem if self.path else self.stage or "run"

    def section(self, name: str) -> dict:
        v = self.data.get(name, {})
        return v if isinstance(v, dict) else {}

    def get(self, dotted: str, default: Any = None) -> Any:
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def set(self, dotted: str, value: Any) -> None:
        """Set a value in both the document (kept for saving) and the plain data."""
        parts = dotted.split(".")
        node = self.doc
        for i, part in enumerate(parts[:-1]):
            if part not in node:
                node[part] = tomlkit.table()
            node = node[part]
            if not isinstance(node, dict):  # e.g. --set run.stage.x=1: a str/array cannot take a key
                where = ".".join(parts[: i + 1])
                raise BadInput(Problem(self.display_name, dotted, f"{where} is a value, not a table: cannot set "
                                       f"{dotted}", "name a key inside a section, e.g. train.beta"))
        node[parts[-1]] = value
        self._refresh()

    def unset(self, dotted: str) -> None:
        parts = dotted.split(".")
        node = self.doc
        for part in parts[:-1]:
            if part not in node:
                return
            node = node[part]
        if parts[-1] in node:
            del node[parts[-1]]
        self._refresh()

    def _refresh(self) -> None:
        comments.refresh(self.doc)  # a template comment the edit made false is refreshed or dropped
        self.text = tomlkit.dumps(self.doc)
        self.data = self.doc.unwrap()

    def reparse(self, text: str) -> None:
        """Replace the whole document (e.g. a new header), keeping the path and the overrides."""
        self.doc = tomlkit.parse(text)
        self._refresh()

    def line_of(self, dotted: str) -> int | None:
        return key_lines(self.text).get(dotted)

    def resolve_path(self, value: str) -> Path:
        """A path from the recipe: absolute; else relative to the recipe's folder if it exists there; else cwd."""
        p = Path(os.path.expanduser(value))
        if p.is_absolute():
            return p
        if self.path is not None:
            beside = self.path.parent / p
            if beside.exists():
                return beside.resolve()
        return (Path.cwd() / p).resolve()

    # -- overrides and saving ------------------------------------------------------------------------------
    def apply_overrides(self, assignments: list[str]) -> None:
        """Apply ``section.key=value`` strings (value parsed as TOML, else taken as a string)."""
        problems = []
        for item in assignments:
            key, sep, raw = item.partition("=")
            key = key.strip()
            if not sep or "." not in key or not key.split(".")[-1]:
                problems.append(Problem("--set", item, "expected section.key=value",
                                        "for example: --set train.learning_rate=1e-4"))
                continue
            try:
                self.set(key, parse_value(raw.strip()))
            except BadInput as e:
                problems.extend(Problem("--set", item, p.message, p.hint) for p in e.problems)
                continue
            self.overridden.add(key)
        if problems:
            raise BadInput(problems)

    def rebase(self, target: str | os.PathLike) -> list[str]:
        """Before saving into another folder: relative paths that name files beside this recipe become absolute
        (relative paths resolve against the recipe's folder, so they would stop working). Returns the keys."""
        if self.path is None or Path(target).resolve().parent == self.path.parent:
            return []

        def absolute(value) -> str | None:
            if not isinstance(value, str) or not value or value.startswith(("builtin:", "run:")):
                return None
            p = Path(os.path.expanduser(value))
            beside = self.path.parent / p
            return str(beside.resolve()) if not p.is_absolute() and beside.exists() else None

        changed = []
        for key in PATH_KEYS:
            new = absolute(self.get(key))
            if new:
                self.set(key, new)
                changed.append(key)
        funcs = self.get("rewards.funcs")
        if isinstance(funcs, list):
            refs = [(f.rpartition(":") if isinstance(f, str) and ".py:" in f else (None, None, None)) for f in funcs]
            new_funcs = [f"{absolute(file)}:{fn}" if file and absolute(file) else f
                         for f, (file, _, fn) in zip(funcs, refs)]
            if new_funcs != funcs:
                self.set("rewards.funcs", new_funcs)
                changed.append("rewards.funcs")
        return changed

    def dumps(self) -> str:
        return tomlkit.dumps(self.doc)

    def save(self, path: str | os.PathLike | None = None) -> Path:
        target = Path(path) if path else self.path
        if target is None:
            raise ValueError("no path to save the recipe to")
        write_text_atomic(target, self.dumps())
        self.path = Path(target).resolve()
        return self.path


def parse_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*("[^"]+"|'[^']+'|[A-Za-z0-9_\-]+(?:\s*\.\s*[A-Za-z0-9_\-]+)*)\s*=""")


def key_lines(text: str) -> dict[str, int]:
    """Map 'section.key' (and 'section') to its 1-based line number, for messages."""
    out: dict[str, int] = {}
    section = ""
    for i, line in enumerate(text.splitlines(), 1):
        m = _HEADER.match(line)
        if m:
            section = m.group(1).replace(" ", "").replace('"', "")
            out.setdefault(section, i)
            continue
        m = _KEY.match(line)
        if m:
            key = m.group(1).strip("\"'").replace(" ", "")
            out.setdefault(f"{section}.{key}" if section else key, i)
    return out
