"""The recipe editor's form rows: stage/model/data basics and the stage's key knobs, bound to dotted recipe keys.

Every editable Input carries its dotted key as its ``name``; the editor screen listens to Input.Changed and
writes the value into the Recipe (so comments and order survive saving). ``to_text``/``from_text`` convert
between recipe values and what a user types (TOML literals; bare strings for string keys). A form's labels are
as wide as its longest one (trl field names such as gradient_accumulation_steps are never cut), whatever the
terminal width.
"""
from __future__ import annotations

from typing import Any

import tomlkit
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Input, Label, Select, Static, Switch

from workbench.core.recipe import SECTIONS, Recipe, parse_value
from workbench.core.stages import STAGES

STRING_KEYS = {f"{sec}.{k}" for sec, keys in SECTIONS.items() for k, spec in keys.items() if spec.kinds == ("str",)}


def to_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return tomlkit.item(value).as_string()


def from_text(key: str, text: str) -> Any:
    """None for an empty field (the key is removed: the default applies)."""
    text = text.strip()
    if not text:
        return None
    if key in STRING_KEYS:
        return text
    return parse_value(text)


def field_input(recipe: Recipe, key: str, placeholder: str = "") -> Input:
    return Input(to_text(recipe.get(key)), placeholder=placeholder, name=key, id="in-" + key.replace(".", "-"),
                 compact=True)


LABEL_MIN = 22


def row(label: str, *widgets) -> tuple:
    """A labelled row, built by ``layout`` once the form's label width is known."""
    return (label, *widgets)


def layout(items: list) -> list:
    """Rows (label, widgets...) as Horizontal rows whose labels are all as wide as the longest (>= LABEL_MIN)."""
    width = max([LABEL_MIN] + [len(item[0]) + 1 for item in items if isinstance(item, tuple)])
    out = []
    for item in items:
        if isinstance(item, tuple):
            label = Label(item[0])
            label.styles.width = width
            item = Horizontal(label, *item[1:], classes="row")
        out.append(item)
    return out


def method_note(method: str) -> str:
    """One line on a [peft] method (core/peft_methods.py)."""
    from workbench.core.peft_methods import METHODS

    return METHODS.get(method, "")


# [peft] keys in the form: label, placeholder; each method shows its own (peft_methods.FIELDS), the rest hide.
PEFT_ROWS = (("r", "LoRA r", "8"), ("alpha", "LoRA alpha", "16"), ("dropout", "LoRA dropout", "0.0"),
             ("target_modules", "target modules", 'all-linear, or ["q_proj", "v_proj"]'),
             ("feedforward_modules", "feed-forward modules", '["down_proj"] (IA3: scaled on the input)'),
             ("num_virtual_tokens", "virtual tokens", "16"))
REPORTERS = ("none", "tensorboard", "wandb", "trackio", "mlflow")


def peft_method(recipe: Recipe) -> str:
    from workbench.core.peft_methods import METHODS, method_of

    method = method_of(recipe)
    return method if method in METHODS else "full"


def report_choice(recipe: Recipe) -> str:
    v = recipe.get("train.report_to")
    v = v[0] if isinstance(v, list) and len(v) == 1 else v
    return v if isinstance(v, str) and v else "none"


def checkpointing_on(recipe: Recipe) -> bool:
    from workbench.core.estimate import checkpointing_on as on

    return on(recipe)


def option_edits(recipe: Recipe, control: str, value) -> list[tuple[str, Any]]:
    """The recipe edits a choice or switch of the Train tab makes: (key, value), None removing the key (the
    child's or trl's default applies). Nothing when the recipe already says so."""
    if control == "peft-method":
        return [("peft.method", value)] if isinstance(value, str) and value != peft_method(recipe) else []
    if control == "grad-ckpt":
        if value == checkpointing_on(recipe):
            return []
        key = "train.activation_checkpointing" if "activation_checkpointing" in recipe.section("train") else \
            "train.gradient_checkpointing"
        default = recipe.get("peft.method") != "prefix"  # trl's default, off for prefix tuning (rules_peft.py)
        return [(key, None if value == default and key == "train.gradient_checkpointing" else bool(value))]
    if control == "liger":
        return [] if value == (recipe.get("train.use_liger_kernel") is True) else \
            [("train.use_liger_kernel", True if value else None)]
    if control == "report-to":
        return [] if not isinstance(value, str) or value == report_choice(recipe) else \
            [("train.report_to", None if value == "none" else value)]
    return []


def basics(recipe: Recipe) -> ComposeResult:
    yield from layout(list(_basics(recipe)))


def knobs(recipe: Recipe) -> ComposeResult:
    yield from layout(list(_knobs(recipe)))


def _basics(recipe: Recipe) -> ComposeResult:
    stage = STAGES.get(recipe.stage)
    yield row("stage", Select([(f"{n}  {s.title}", n) for n, s in STAGES.items()], value=recipe.stage
                              if recipe.stage in STAGES else Select.BLANK, allow_blank=recipe.stage not in STAGES,
                              id="stage", compact=True))
    yield row("name", field_input(recipe, "run.name", "run name"))
    yield row("model", field_input(recipe, "model.path", "builtin:NAME, run:ID, folder or hub id"),
              Button("pick", id="pick-model", compact=True))
    for name in (stage.needs_models + stage.optional_models) if stage else ():
        yield row(name.replace("_", " "), field_input(recipe, f"model.{name}", "builtin:NAME, run:ID or folder"))
    yield row("trust remote code", Switch(bool(recipe.get("model.trust_remote_code", False)), id="trust"),
              Static("runs Python code shipped with the model", classes="note"))
    yield row("dataset", field_input(recipe, "data.path", "jsonl/json/csv/parquet file or hub id"),
              Button("pick", id="pick-data", compact=True))
    yield Static("", id="data-preview", markup=False)
    yield row("system prompt", field_input(recipe, "data.system_prompt", "(none)"))
    if stage is None or stage.uses_rewards:
        yield row("reward functions", field_input(recipe, "rewards.funcs", '["format", "correctness"]'))
    if stage is not None and stage.generates:
        for key, hint in (("k", "4"), ("max_new_tokens", "48"), ("temperature", "0.9"), ("threshold", "0.0")):
            if key not in stage.generate_keys:
                continue
            yield row(f"generate {key}", field_input(recipe, f"generate.{key}", hint))


def _knobs(recipe: Recipe) -> ComposeResult:
    stage = STAGES.get(recipe.stage)
    for field in (stage.key_fields if stage else ("learning_rate", "max_steps")):
        yield row(field, field_input(recipe, f"train.{field}"))
    yield Static("", id="batch-note", markup=False)
    from workbench.core.peft_methods import METHODS

    method = peft_method(recipe)
    yield row("adapter", Select([(m, m) for m in METHODS], value=method, allow_blank=False, id="peft-method",
                                compact=True), Static(method_note(method), id="peft-note", classes="note"))
    for key, label, hint in PEFT_ROWS:
        inp = field_input(recipe, f"peft.{key}", hint)
        inp.add_class("peft-field")
        yield row(label, inp)
    if stage is None or stage.config_class:  # fields of every trl config
        yield row("gradient checkpointing", Switch(checkpointing_on(recipe), id="grad-ckpt"),
                  Static("recompute activations in the backward pass: far less memory, ~30% slower", classes="note"))
        yield row("Liger kernels", Switch(recipe.get("train.use_liger_kernel") is True, id="liger"),
                  Static("fused Triton kernels (norm, RoPE, SwiGLU, loss): less memory on a GPU (liger-kernel)",
                         classes="note"))
        current = report_choice(recipe)
        yield row("report to", Select([(r, r) for r in dict.fromkeys((*REPORTERS, current))], value=current,
                                      allow_blank=False, id="report-to", compact=True),
                  Static("also log to a tracker (the run's own metrics are written either way)", classes="note"))
    yield row("DeepSpeed ZeRO", Select([("0 (off)", 0), ("1", 1), ("2", 2), ("3", 3)],
                                       value=int(recipe.get("launch.zero_stage", 0) or 0), allow_blank=False,
                                       id="zero", compact=True))
    yield row("launcher", Select([(b, b) for b in ("python", "torchrun", "accelerate", "deepspeed")],
                                 value=recipe.get("launch.backend", "python") or "python", allow_blank=False,
                                 id="backend", compact=True))
    yield row("processes", field_input(recipe, "launch.num_processes", "1"))
    yield row("offload to CPU", Switch(bool(recipe.get("launch.offload_optimizer")), id="offload"),
              Static("optimizer states (ZeRO 1-3); with ZeRO-3 also parameters", classes="note"))
    yield row("GPU size (GB)", field_input(recipe, "launch.gpu_memory_gb", "80"))
    if stage is not None and stage.vllm:  # vLLM generation (workbench/core/vllm_server.py)
        yield row("vLLM generation", Select(VLLM_MODES, value=vllm_mode(recipe), allow_blank=False, id="vllm-mode",
                                            compact=True))
        yield row("vLLM memory share", field_input(recipe, "train.vllm_gpu_memory_utilization",
                                                   "of each GPU: 0.3 colocate, 0.9 server"))
        yield row("vLLM server GPUs", field_input(recipe, "vllm.server_gpus", "[1]: server mode starts trl vllm-serve"))
    yield Static("", id="launch-note", markup=False)


VLLM_MODES = [("off (model.generate)", "off"), ("colocate: on the training GPUs", "colocate"),
              ("server: on GPUs of its own", "server")]


def vllm_mode(recipe: Recipe) -> str:
    """The editor's choice for train.use_vllm / vllm_mode: off, colocate or server."""
    from workbench.core.vllm_server import mode

    return mode(recipe) if mode(recipe) in ("colocate", "server") else "off"


def batch_note(recipe: Recipe, fields: dict) -> str:
    """The arithmetic of one optimiser step, in the recipe's own terms."""
    def val(key: str, default):
        v = recipe.get(f"train.{key}")
        if v is None:
            v = (fields.get(key) or {}).get("default", default)
        return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else default

    per, accum = val("per_device_train_batch_size", 8), val("gradient_accumulation_steps", 1)
    procs = recipe.get("launch.num_processes", 1)
    procs = procs if isinstance(procs, int) and procs > 0 else 1
    eff = per * accum * procs
    text = f"effective batch = {per} per device x {accum} accumulation x {procs} processes = {eff}"
    stage = STAGES.get(recipe.stage)
    if stage and stage.uses_rewards:
        gens = val("num_generations", 8)
        text += f" completions = {eff / gens:g} prompts x {gens} generations"
        if eff % gens:
            text += "  (not divisible!)"
    return text


def launch_note(recipe: Recipe, runs_dir) -> str:
    """Memory per GPU (estimator) and the command the run would start with, for the current form values."""
    from pathlib import Path

    from workbench.core import estimate, launch

    lines = []
    try:
        e = estimate.estimate_recipe(recipe, runs_dir)
        gpu_gb = recipe.get("launch.gpu_memory_gb", 80)
        gpu_gb = gpu_gb if isinstance(gpu_gb, (int, float)) and gpu_gb > 0 else 80
        lines.append(f"memory per GPU ~ {e.gpu_model_states / 1e9:.2f} GB model states + "
                     f"{e.activations / 1e9:.2f} GB activations (rough) = {e.gpu_total / 1e9:.2f} GB "
                     f"({e.params:,} params, {e.trainable:,} trainable, ZeRO {e.zero}, {e.gpus} GPU(s))")
        if e.gpu_total > gpu_gb * 1e9:
            lines.append(f"WARNING: more than a {gpu_gb:g} GB GPU: raise ZeRO, offload, use LoRA or a smaller batch")
    except (ValueError, TypeError, OSError) as err:
        lines.append(f"memory estimate unavailable: {err}")
    try:
        plan = launch.plan(recipe, Path("runs") / "<new run>")
        lines.append("command: " + " ".join(plan.argv))
        if plan.server:
            lines.append(f"vLLM server first (GPUs {plan.server['gpus']}, a free loopback port): "
                         + " ".join(plan.server["argv"][1:]))
    except (ValueError, TypeError) as err:
        lines.append(f"command unavailable: {err}")
    return "\n".join(lines)
