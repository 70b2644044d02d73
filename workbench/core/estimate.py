"""Memory estimator: model-state bytes per GPU from a model's config (no weights loaded), and a rough
activation term.

Model states follow the ZeRO paper (Rajbhandari et al. 2020) for mixed-precision Adam: 2 bytes of fp16/bf16
weights, 2 of gradients and K = 12 of fp32 optimizer states (master weights, momentum, variance) per parameter.
With N data-parallel GPUs:
  ZeRO-0  (2 + 2 + K) * P            ZeRO-1  (2 + 2) * P + K * P / N
  ZeRO-2  2 * P + (2 + K) * P / N    ZeRO-3  (2 + 2 + K) * P / N
LoRA: only the T trainable parameters carry gradients and optimizer states (the frozen P carry weights only).
Offload: the optimizer (with its gradients) to CPU, and with ZeRO-3 the parameters too.
``accounting="deepspeed"`` reproduces DeepSpeed's own estimate_zero2/zero3_model_states_mem_needs, which also
count fp32 gradient buffers (18 bytes instead of 14 per partitioned parameter) and, for ZeRO-3, a working
buffer of 4 bytes per parameter of the largest layer.

The activation term is a rough figure (Korthikanti et al. 2022, no recomputation): 34 * b * s * h bytes per
layer plus 5 * a * s^2 * b for attention scores, where b is the micro batch, s the sequence length, h the hidden
size and a the number of heads. Real numbers depend on kernels, recomputation and the framework.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

GB = 1e9
K_ADAM = 12


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


@dataclass
class Estimate:
    params: int
    trainable: int
    gpus: int
    zero: int
    gpu_model_states: float  # bytes per GPU
    cpu_model_states: float  # bytes on each node's CPU (offload)
    activations: float  # bytes per GPU, rough
    parts: dict = field(default_factory=dict)  # bytes per GPU by component
    notes: list[str] = field(default_factory=list)

    @property
    def gpu_total(self) -> float:
        return self.gpu_model_states + self.activations

    def table(self, gpu_gb: float | None = None) -> str:
        lines = [f"parameters      {self.params:,} ({self.trainable:,} trainable)",
                 f"GPUs            {self.gpus} (ZeRO stage {self.zero})"]
        for name, value in self.parts.items():
            lines.append(f"  {name:<14}{value / GB:10.2f} GB per GPU")
        lines.append(f"model states    {self.gpu_model_states / GB:10.2f} GB per GPU")
        if self.cpu_model_states:
            lines.append(f"CPU (offload)   {self.cpu_model_states / GB:10.2f} GB per node")
        lines.append(f"activations     {self.activations / GB:10.2f} GB per GPU (rough)")
        lines.append(f"total           {self.gpu_total / GB:10.2f} GB per GPU")
        if gpu_gb and self.gpu_total > gpu_gb * GB:
            lines.append(f"WARNING: exceeds a {gpu_gb:g} GB GPU: raise the ZeRO stage, offload, use LoRA, or lower "
                         "the batch / sequence length")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def estimate(params: int, gpus: int = 1, zero: int = 0, trainable: int | None = None,
             offload_optimizer: bool = False, offload_params: bool = False, nodes: int = 1,
             shape: ModelShape | None = None, micro_batch: int = 0, seq_len: int = 0,
             accounting: str = "paper", weight_bytes: int = 2) -> Estimate:
    """Per-GPU bytes. ``gpus`` is the total data-parallel degree (all nodes)."""
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
    weights = weight_bytes * p / shard[0]
    grads = grad_b * t / shard[1]
    optim = opt_b * t / shard[2]
    if accounting == "deepspeed" and zero == 3 and shape and shape.largest_layer:
        weights += 4 * shape.largest_layer  # working buffer to gather one layer
    cpu = 0.0
    if offload_optimizer:
        cpu += (grads + optim) * n / nodes
        grads = optim = 0.0
    if offload_params:
        cpu += weight_bytes * p / shard[0] * n / nodes
        weights = 4 * shape.largest_layer if (accounting == "deepspeed" and shape and shape.largest_layer) else 0.0
    act = activation_bytes(shape, micro_batch, seq_len) if shape else 0.0
    if lora:
        notes.append("LoRA: gradients and optimizer states only for the adapter's parameters")
    return Estimate(p, t, n, zero, weights + grads + optim, cpu, act,
                    {"weights": weights, "gradients": grads, "optimizer": optim}, notes)


def activation_bytes(shape: ModelShape, micro_batch: int, seq_len: int) -> float:
    if not (shape.hidden and shape.layers and micro_batch and seq_len):
        return 0.0
    b, s, h, a = micro_batch, seq_len, shape.hidden, max(1, shape.heads)
    return float(shape.layers * (34 * b * s * h + 5 * a * s * s * b))


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
    return ModelShape(total, h, layers, heads, v, max(per_layer, embed), "config.json", inter, head_dim, kv)


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


LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def lora_trainable(shape: ModelShape, r: int, targets="all-linear") -> int:
    """LoRA parameters: r * (in + out) for each adapted linear layer of each decoder layer."""
    h, hd = shape.hidden, shape.head_dim or shape.hidden // max(1, shape.heads)
    q_out, kv_out, inter = shape.heads * hd, (shape.kv_heads or shape.heads) * hd, shape.intermediate or 4 * h
    dims = {"q_proj": (h, q_out), "k_proj": (h, kv_out), "v_proj": (h, kv_out), "o_proj": (q_out, h),
            "gate_proj": (h, inter), "up_proj": (h, inter), "down_proj": (inter, h)}
    names = LORA_TARGETS if targets == "all-linear" else [targets] if isinstance(targets, str) else targets
    per_layer = sum(r * sum(dims[n]) for n in names if n in dims)
    return per_layer * shape.layers


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
        cached = models.hub_cached(ref.value)
        snaps = sorted((cached / "snapshots").iterdir()) if cached else []
        folder = snaps[-1] if snaps else None
    if folder is None or not (folder / "config.json").is_file():
        raise ValueError(f"no config.json for model {raw!r} on this machine; use --params N instead")
    return model_shape(folder)


def estimate_recipe(recipe, runs_dir: Path | None = None, accounting: str | None = None) -> Estimate:
    shape = recipe_shape(recipe, runs_dir)
    launch, train, peft = recipe.section("launch"), recipe.section("train"), recipe.section("peft")
    gpus = int(launch.get("num_processes", 1)) * int(launch.get("num_machines", 1))
    trainable = None
    if peft.get("method") == "lora":
        trainable = lora_trainable(shape, int(peft.get("r", 8)), peft.get("target_modules", "all-linear"))
    seq = train.get("max_length") or 0
    if not seq and (train.get("max_completion_length") or train.get("max_prompt_length")):
        seq = int(train.get("max_prompt_length") or 512) + int(train.get("max_completion_length") or 256)
    mp = launch.get("mixed_precision", "auto")
    return estimate(shape.params, gpus=gpus, zero=int(launch.get("zero_stage", 0)), trainable=trainable,
                    offload_optimizer=bool(launch.get("offload_optimizer")),
                    offload_params=bool(launch.get("offload_params")), nodes=int(launch.get("num_machines", 1)),
                    shape=shape, micro_batch=int(train.get("per_device_train_batch_size", 8)), seq_len=int(seq or 1024),
                    accounting=accounting or ("deepspeed" if launch.get("backend") == "deepspeed" else "paper"),
                    weight_bytes=4 if mp == "no" else 2)
