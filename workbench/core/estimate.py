"""Memory estimator: model-state bytes per GPU from a model's config (no weights loaded), and a rough
activation term.

Model states follow the ZeRO paper (Rajbhandari et al. 2020) for mixed-precision Adam: 2 bytes of fp16/bf16
weights, 2 of gradients and K = 12 of fp32 optimizer states (master weights, momentum, variance) per parameter.
With N data-parallel GPUs:
  ZeRO-0  (2 + 2 + K) * P            ZeRO-1  (2 + 2) * P + K * P / N
  ZeRO-2  2 * P + (2 + K) * P / N    ZeRO-3  (2 + 2 + K) * P / N
Adapters (LoRA, DoRA, QLoRA, IA3, prompt and prefix tuning): only the T trainable parameters carry gradients and
optimizer states; the frozen P carry weights only, at the base's precision: 2 bytes (bf16/fp16), 4 (float32, or
mixed_precision "no"), and for QLoRA's 4-bit NF4 base 0.516 (4 bits + double-quantized block constants, 0.127 bits)
for the decoder layers, with the embeddings and the output layer left in 16 bits. T is counted per method the way
peft builds it (checked against peft in tests/core/test_estimate.py).
Offload: the optimizer (with its gradients) to CPU, and with ZeRO-3 the parameters too.
``accounting="deepspeed"`` reproduces DeepSpeed's own estimate_zero2/zero3_model_states_mem_needs, which also
count fp32 gradient buffers (18 bytes instead of 14 per partitioned parameter) and, for ZeRO-3, a working
buffer of 4 bytes per parameter of the largest layer.

The activation term is a rough figure (Korthikanti et al. 2022): without recomputation 34 * b * s * h bytes per
layer plus 5 * a * s^2 * b for attention scores, where b is the micro batch, s the sequence length, h the hidden
size and a the number of heads. With gradient checkpointing (trl's default: every trl config turns it on) only each
layer's input is kept (2 * b * s * h bytes per layer) and one layer's full activations exist at a time during the
recomputation. Real numbers depend on kernels (flash attention keeps no s^2 scores) and the framework.
With only a parameter count (``workbench estimate --params N``) the activations come from the shape of the common
model nearest in size (``typical_shape``: its layers, hidden size and heads), and the table says so; with no
shape at all they are unknown, never 0.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

GB = 1e9
K_ADAM = 12
NF4_BYTES = 0.5 + 0.127 / 8  # QLoRA: 4-bit weights + double-quantized constants (Dettmers et al. 2023, 0.127 bits)


@dataclass
class ModelShape:
    params: int
    hidden: int = 0
    layers: int = 0
    heads: int = 0
    vocab: int = 0
    largest_layer: int = 0  # parameters of the largest single layer (ZeRO-3 working buffer)
    source: str = ""
    intermediate: int = 0
    head_dim: int = 0
    kv_heads: int = 0
    model_type: str = ""
    tied: bool = True  # the output layer shares the embedding matrix


@dataclass
class Estimate:
    params: int
    trainable: int
    gpus: int
    zero: int
    gpu_model_states: float  # bytes per GPU
    cpu_model_states: float  # bytes on each node's CPU (offload)
    activations: float | None  # bytes per GPU, rough; None: unknown (no model shape, batch or length)
    parts: dict = field(default_factory=dict)  # bytes per GPU by component
    notes: list[str] = field(default_factory=list)
    precision: str = ""  # of the base weights, e.g. "bf16", "4-bit NF4 base"
    checkpointing: bool = False  # activations with gradient checkpointing

    @property
    def gpu_total(self) -> float:
        return self.gpu_model_states + (self.activations or 0.0)

    def table(self, gpu_gb: float | None = None) -> str:
        lines = [f"parameters      {self.params:,} ({self.trainable:,} trainable)",
                 f"GPUs            {self.gpus} (ZeRO stage {self.zero})"]
        for name, value in self.parts.items():
            lines.append(f"  {name:<14}{value / GB:10.2f} GB per GPU")
        lines.append(f"model states    {self.gpu_model_states / GB:10.2f} GB per GPU")
        if self.cpu_model_states:
            lines.append(f"CPU (offload)   {self.cpu_model_states / GB:10.2f} GB per node")
        if self.activations is None:
            lines.append("activations     unknown without a model shape or a recipe (pass a RECIPE)")
        else:
            lines.append(f"activations     {self.activations / GB:10.2f} GB per GPU (rough"
                         + (", gradient checkpointing)" if self.checkpointing else ")"))
        if self.precision:
            lines.append(f"base weights    {self.precision}")
        lines.append(f"total           {self.gpu_total / GB:10.2f} GB per GPU"
                     + (" + activations" if self.activations is None else ""))
        if gpu_gb and self.gpu_total > gpu_gb * GB:
            lines.append(f"WARNING: exceeds a {gpu_gb:g} GB GPU: raise the ZeRO stage, offload, use LoRA, or lower "
                         "the batch / sequence length")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def estimate(params: int, gpus: int = 1, zero: int = 0, trainable: int | None = None,
             offload_optimizer: bool = False, offload_params: bool = False, nodes: int = 1,
             shape: ModelShape | None = None, micro_batch: int = 0, seq_len: int = 0,
             accounting: str = "paper", weight_bytes: float = 2, gradient_checkpointing: bool = False,
             frozen_weight_bytes: float | None = None) -> Estimate:
    """Per-GPU bytes. ``gpus`` is the total data-parallel degree (all nodes). ``frozen_weight_bytes``: the total
    bytes of the weights when they differ from ``weight_bytes * params`` (a 4-bit base)."""
    if zero not in (0, 1, 2, 3):
        raise ValueError("ZeRO stage must be 0..3")
    n, p = max(1, gpus), params
    t = p if trainable is None else trainable
    lora = t < p
    notes = []
    if offload_params and zero != 3:
        notes.append("parameter offload needs ZeRO-3; ignored")
        offload_params = False
    # DeepSpeed also keeps fp32 gradients (its ZeRO-3 estimate counts 18 bytes per partitioned parameter in all).
    grad_b = 2 if accounting == "paper" else (4 if zero == 3 else 6)
    opt_b = K_ADAM
    shard = {0: (1, 1, 1), 1: (1, 1, n), 2: (1, n, n), 3: (n, n, n)}[zero]  # divisors: weights, grads, optimizer
    weights = (frozen_weight_bytes if frozen_weight_bytes is not None else weight_bytes * p) / shard[0]
    grads = grad_b * t / shard[1]
    optim = opt_b * t / shard[2]
    if accounting == "deepspeed" and zero == 3 and shape and shape.largest_layer:
        weights += 4 * shape.largest_layer  # working buffer to gather one layer
    cpu = 0.0
    if offload_optimizer:
        cpu += (grads + optim) * n / nodes
        grads = optim = 0.0
    if offload_params:
        cpu += weights * n / nodes
        weights = 4 * shape.largest_layer if (accounting == "deepspeed" and shape and shape.largest_layer) else 0.0
    act = activation_bytes(shape, micro_batch, seq_len, gradient_checkpointing) if shape else None
    if lora:
        notes.append("adapter: gradients and optimizer states only for the adapter's parameters")
    return Estimate(p, t, n, zero, weights + grads + optim, cpu, act,
                    {"weights": weights, "gradients": grads, "optimizer": optim}, notes,
                    checkpointing=gradient_checkpointing)


def activation_bytes(shape: ModelShape, micro_batch: int, seq_len: int, checkpointing: bool = False) -> float | None:
    if not (shape.hidden and shape.layers and micro_batch and seq_len):
        return None
    b, s, h, a = micro_batch, seq_len, shape.hidden, max(1, shape.heads)
    one_layer = 34 * b * s * h + 5 * a * s * s * b
    if checkpointing:  # each layer's input is kept; one layer is recomputed at a time in the backward pass
        return float(shape.layers * 2 * b * s * h + one_layer)
    return float(shape.layers * one_layer)


# -- model shapes from config.json / safetensors headers (no torch) ---------------------------------------------
def shape_from_config(cfg: dict) -> ModelShape:
    """Parameter count of a decoder-only transformer (llama / qwen2 / mistral family) from its config."""
    h = cfg.get("hidden_size") or cfg.get("n_embd") or cfg.get("d_model")
    layers = cfg.get("num_hidden_layers") or cfg.get("n_layer") or cfg.get("num_layers")
    v = cfg.get("vocab_size", 0)
    if not (h and layers):
        raise ValueError("config.json has no hidden_size / num_hidden_layers")
    heads = cfg.get("num_attention_heads") or cfg.get("n_head") or 1
    kv = cfg.get("num_key_value_heads") or heads
    head_dim = cfg.get("head_dim") or h // heads
    inter = cfg.get("intermediate_size") or 4 * h
    attn = h * heads * head_dim + 2 * h * kv * head_dim + heads * head_dim * h
    if cfg.get("model_type") in ("qwen2",) or cfg.get("attention_bias"):
        attn += heads * head_dim + 2 * kv * head_dim
    mlp = 3 * h * inter
    per_layer = attn + mlp + 2 * h
    embed = v * h
    head = 0 if cfg.get("tie_word_embeddings", True) else v * h
    total = embed + layers * per_layer + h + head
    return ModelShape(total, h, layers, heads, v, max(per_layer, embed), "config.json", inter, head_dim, kv,
                      str(cfg.get("model_type") or ""), bool(cfg.get("tie_word_embeddings", True)))


def safetensors_params(folder: Path) -> int | None:
    """Exact parameter count from the safetensors headers (8-byte length + JSON); no tensor is read."""
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for f in files:
        with open(f, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
        for name, meta in header.items():
            if name == "__metadata__":
                continue
            count = 1
            for d in meta["shape"]:
                count *= d
            total += count
    return total


def model_shape(folder: Path) -> ModelShape:
    cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    shape = shape_from_config(cfg)
    exact = safetensors_params(folder)
    if exact:
        shape.params, shape.source = exact, "safetensors header"
    return shape


# Published shapes of common decoder-only models, for an estimate from a parameter count alone (--params N): the
# activations need a hidden size, a layer count and heads, which the count does not give.
TYPICAL_CONFIGS = {
    "GPT-2": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                  vocab_size=50257),
    "Qwen2.5-0.5B": dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                         intermediate_size=4864, vocab_size=151936, model_type="qwen2"),
    "Llama-3.2-1B": dict(hidden_size=2048, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8,
                         intermediate_size=8192, vocab_size=128256),
    "Qwen2.5-1.5B": dict(hidden_size=1536, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
                         intermediate_size=8960, vocab_size=151936, model_type="qwen2"),
    "Llama-3.2-3B": dict(hidden_size=3072, num_hidden_layers=28, num_attention_heads=24, num_key_value_heads=8,
                         intermediate_size=8192, vocab_size=128256),
    "Llama-2-7B": dict(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, intermediate_size=11008,
                       vocab_size=32000, tie_word_embeddings=False),
    "Llama-2-13B": dict(hidden_size=5120, num_hidden_layers=40, num_attention_heads=40, intermediate_size=13824,
                        vocab_size=32000, tie_word_embeddings=False),
    "Qwen2.5-32B": dict(hidden_size=5120, num_hidden_layers=64, num_attention_heads=40, num_key_value_heads=8,
                        intermediate_size=27648, vocab_size=152064, tie_word_embeddings=False, model_type="qwen2"),
    "Llama-3-70B": dict(hidden_size=8192, num_hidden_layers=80, num_attention_heads=64, num_key_value_heads=8,
                        intermediate_size=28672, vocab_size=128256, tie_word_embeddings=False),
    "Llama-3.1-405B": dict(hidden_size=16384, num_hidden_layers=126, num_attention_heads=128, num_key_value_heads=8,
                           intermediate_size=53248, vocab_size=128256, tie_word_embeddings=False),
}


def typical_shape(params: int) -> ModelShape:
    """The shape of the common model whose size is nearest to ``params`` (on a log scale), with ``params`` kept as
    given; ``source`` names the model it was taken from."""
    import math

    shapes = {name: shape_from_config(cfg) for name, cfg in TYPICAL_CONFIGS.items()}
    name = min(shapes, key=lambda n: abs(math.log(shapes[n].params) - math.log(max(1, params))))
    shape = shapes[name]
    shape.params, shape.source = params, f"typical shape ({name})"
    return shape


LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# peft's default IA3 modules (TRANSFORMERS_MODELS_TO_IA3_*_MAPPING) for the llama / qwen2 / mistral family.
IA3_TARGETS = {"llama": ("k_proj", "v_proj", "down_proj"), "mistral": ("k_proj", "v_proj", "down_proj")}
IA3_DEFAULT = ("q_proj", "v_proj", "down_proj")  # qwen2, qwen3, gemma*, llama4
IA3_FEEDFORWARD = ("down_proj",)


def _linear_dims(shape: ModelShape) -> dict:
    """(in, out) features of each linear layer of one decoder layer."""
    h, hd = shape.hidden, shape.head_dim or shape.hidden // max(1, shape.heads)
    q_out, kv_out, inter = shape.heads * hd, (shape.kv_heads or shape.heads) * hd, shape.intermediate or 4 * h
    return {"q_proj": (h, q_out), "k_proj": (h, kv_out), "v_proj": (h, kv_out), "o_proj": (q_out, h),
            "gate_proj": (h, inter), "up_proj": (h, inter), "down_proj": (inter, h)}


def _names(targets, default) -> list[str]:
    if targets in (None, "all-linear"):
        return list(default)
    names = [targets] if isinstance(targets, str) else list(targets)
    return [n.rsplit(".", 1)[-1] for n in names if isinstance(n, str)]


def lora_trainable(shape: ModelShape, r: int, targets="all-linear", dora: bool = False) -> int:
    """LoRA parameters: r * (in + out) for each adapted linear layer of each decoder layer; DoRA adds a magnitude
    per output feature."""
    dims = _linear_dims(shape)
    names = [n for n in _names(targets, LORA_TARGETS) if n in dims]
    per_layer = sum(r * sum(dims[n]) + (dims[n][1] if dora else 0) for n in names)
    return per_layer * shape.layers


def adapter_trainable(shape: ModelShape, method: str, peft: dict) -> int | None:
    """Trainable parameters of a [peft] method (None: full fine-tuning), as peft 0.21 builds each adapter."""
    if method in ("lora", "qlora", "dora"):
        return lora_trainable(shape, int(peft.get("r", 8)), peft.get("target_modules", "all-linear"), method == "dora")
    if method == "ia3":  # one scaling vector per module: over the input for feed-forward ones, else the output
        dims = _linear_dims(shape)
        targets = peft.get("target_modules")  # unset: peft's defaults for the architecture
        names = list(LORA_TARGETS) if targets == "all-linear" else \
            _names(targets, IA3_TARGETS.get(shape.model_type, IA3_DEFAULT))
        ff = set(_names(peft.get("feedforward_modules"), [n for n in names if n in IA3_FEEDFORWARD]))
        return shape.layers * sum(dims[n][0] if n in ff else dims[n][1] for n in names if n in dims)
    tokens = int(peft.get("num_virtual_tokens", 16))
    if method == "prompt":  # one embedding per virtual token
        return tokens * shape.hidden
    if method == "prefix":  # a key and a value per virtual token in every layer (kv heads x head dim wide)
        hd = shape.head_dim or shape.hidden // max(1, shape.heads)
        return tokens * shape.layers * 2 * (shape.kv_heads or shape.heads) * hd
    return None


def base_weight_bytes(shape: ModelShape, method: str, dtype: str, mixed_precision: str) -> tuple[float, str]:
    """Total bytes of the model's weights and a word for their precision (4-bit NF4 under QLoRA: the decoder
    layers' linear weights; embeddings, output layer and norms stay 16-bit)."""
    if method == "qlora":
        dense = shape.vocab * shape.hidden * (1 if shape.tied else 2)
        return NF4_BYTES * (shape.params - dense) + 2 * dense, "4-bit NF4 base (QLoRA)"
    if dtype == "float32" or mixed_precision == "no":
        return 4.0 * shape.params, "float32"
    return 2.0 * shape.params, {"float16": "fp16", "bfloat16": "bf16"}.get(dtype, "bf16/fp16")


def recipe_shape(recipe, runs_dir: Path | None) -> ModelShape:
    """The shape of the recipe's model: built-in spec, run:ID final model, local folder or hub cache."""
    from workbench.core import models

    raw = recipe.get("model.path", "")
    ref = models.parse_model_ref(raw, recipe.resolve_path)
    if ref.kind == "builtin" and ref.value in models.BUILTIN_SPECS:
        return shape_from_config(models.builtin_config(ref.value))
    folder = None
    if ref.kind == "run" and runs_dir is not None:
        folder = models.run_final(runs_dir, ref.value)  # ValueError (a clear message) outside the runs dir
    elif ref.kind == "local":
        folder = Path(ref.value)
    elif ref.kind == "hub":
        from workbench.core.discovery import hub_snapshot

        folder = hub_snapshot(ref.value)
    if folder is None or not (folder / "config.json").is_file():
        raise ValueError(f"no config.json for model {raw!r} on this machine; use --params N instead")
    return model_shape(folder)


def estimate_recipe(recipe, runs_dir: Path | None = None, accounting: str | None = None) -> Estimate:
    from workbench.core.peft_methods import TITLES as METHOD_TITLES, method_of

    shape = recipe_shape(recipe, runs_dir)
    launch, train, peft = recipe.section("launch"), recipe.section("train"), recipe.section("peft")
    gpus = int(launch.get("num_processes", 1)) * int(launch.get("num_machines", 1))
    method = method_of(recipe)
    trainable = adapter_trainable(shape, method, peft)
    seq = train.get("max_length") or 0
    if not seq and (train.get("max_completion_length") or train.get("max_prompt_length")):
        seq = int(train.get("max_prompt_length") or 512) + int(train.get("max_completion_length") or 256)
    mp = launch.get("mixed_precision", "auto")
    weights, precision = base_weight_bytes(shape, method, str(recipe.get("model.dtype", "auto")), mp)
    e = estimate(shape.params, gpus=gpus, zero=int(launch.get("zero_stage", 0)), trainable=trainable,
                 offload_optimizer=bool(launch.get("offload_optimizer")),
                 offload_params=bool(launch.get("offload_params")), nodes=int(launch.get("num_machines", 1)),
                 shape=shape, micro_batch=int(train.get("per_device_train_batch_size", 8)), seq_len=int(seq or 1024),
                 accounting=accounting or ("deepspeed" if launch.get("backend") == "deepspeed" else "paper"),
                 weight_bytes=4 if mp == "no" else 2, gradient_checkpointing=checkpointing_on(recipe),
                 frozen_weight_bytes=weights if trainable is not None else None)
    e.precision = precision if trainable is not None else ("float32" if mp == "no" else "bf16/fp16 (mixed precision)")
    if trainable is not None:  # name the method in the adapter note
        e.notes = [n.replace("adapter:", f"{METHOD_TITLES[method]} adapter:") for n in e.notes]
    return e


def checkpointing_on(recipe) -> bool:
    """Gradient checkpointing as the child will run it: activation_checkpointing, else gradient_checkpointing, else
    trl's default (on), except for prefix tuning, where the child turns it off (workbench/train/entry.py)."""
    from workbench.core.peft_methods import method_of

    train = recipe.section("train")
    for key in ("activation_checkpointing", "gradient_checkpointing"):
        if isinstance(train.get(key), bool):
            return train[key]
    return method_of(recipe) != "prefix"
