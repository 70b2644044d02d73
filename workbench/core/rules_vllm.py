"""vLLM generation (GRPO/RLOO ``use_vllm``), checked before launch: what trl and vLLM need (a GPU, the modes'
constraints from trl 1.12's GRPOConfig / VLLMGeneration / VLLMClient) and what the workbench's own server mode
needs ([vllm] server_gpus on this machine, disjoint from the trainer's GPUs). The vllm package itself is checked by
rules.kernels_installed; value sets (vllm_mode, vllm_model_impl, ...) by rules_stages.known_values.

Light: no torch, no vllm import (importlib.metadata reads vllm's version from its dist-info). GPUs come from
vllm_server.gpu_inventory (NVML's snapshot, the system panel's reading, else NVIDIA's /proc entries).
"""
from __future__ import annotations

import re

from workbench.core import vllm_server
from workbench.core.rules import RuleContext, as_int, as_num

# trl/import_utils.is_vllm_available warns outside this range (trl 1.12's [vllm] extra pins it too)
TRL_VLLM_RANGE = ((0, 19, 0), (0, 27, 1))
MANAGED_SERVER_KEYS = ("vllm_server_host", "vllm_server_port", "vllm_server_base_url")


def _on(c: RuleContext) -> bool:
    return c.has("use_vllm") and c.train.get("use_vllm") is True


def _mode(c: RuleContext):
    return c.get("vllm_mode", "colocate")


def vllm_needs_a_gpu(c: RuleContext) -> None:
    """VLLMGeneration: vLLM runs on CUDA (server mode's weight sync too: VLLMClient.init_communicator raises on
    another device); use_cpu turns the trainer's GPU off. trl warns about vLLM versions it does not support."""
    if not _on(c):
        return
    count, reason = vllm_server.gpu_inventory()
    if count == 0:
        c.add("train.use_vllm", f"vLLM generation needs a GPU, and this machine shows none "
              f"({reason.removeprefix('no GPU: ')})",
              "remove use_vllm (generation then uses model.generate), or run on a GPU machine")
    if c.train.get("use_cpu") is True:
        c.add("train.use_cpu", "use_vllm with use_cpu = true: the trainer would not use the GPU vLLM needs",
              "remove use_cpu (or use_vllm)")
    version = _installed_version("vllm")
    if version is not None and not TRL_VLLM_RANGE[0] <= version <= TRL_VLLM_RANGE[1]:
        lo, hi = (".".join(map(str, v)) for v in TRL_VLLM_RANGE)
        c.add("train.use_vllm", f"vllm {'.'.join(map(str, version))} is installed; trl supports {lo} to {hi}",
              f"pip install 'vllm>={lo},<={hi}' (or pip install 'workbench[vllm]')", severity="warning")


def vllm_tensor_parallel(c: RuleContext) -> None:
    """Colocate: tensor_parallel_size must divide the world size (VLLMGeneration). Server: the workbench shards its
    server over all of server_gpus. Either: vLLM needs the model's attention heads to split evenly."""
    if not _on(c):
        return
    tp = c.int("vllm_tensor_parallel_size", 1)
    if _mode(c) == "colocate" and tp and tp > 0 and c.world % tp:
        c.add("train.vllm_tensor_parallel_size", f"vllm_tensor_parallel_size ({tp}) must divide the number of "
              f"training processes ({c.world})", f"use a divisor of {c.world}, e.g. 1")
    gpus = vllm_server.server_gpus(c.r)
    if _mode(c) == "server" and gpus:
        if c.is_set("vllm_tensor_parallel_size") and tp != len(gpus):
            c.add("train.vllm_tensor_parallel_size", f"the workbench's vLLM server shards the model over all "
                  f"{len(gpus)} server GPU(s) {gpus}, so vllm_tensor_parallel_size = {tp} does not apply",
                  "remove vllm_tensor_parallel_size (or list that many [vllm] server_gpus)")
        tp = len(gpus)
    if not c.files or not tp or tp <= 1:
        return
    from workbench.core.rules_data import model_config

    config = model_config(c, "model.path") or {}
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    heads = as_int(text.get("num_attention_heads"))
    if heads and heads % tp:
        c.add(c.key("vllm_tensor_parallel_size") if _mode(c) == "colocate" else "vllm.server_gpus",
              f"vLLM splits the model's {heads} attention heads over {tp} GPUs, which does not divide them",
              f"use a tensor parallel size that divides {heads}")


def vllm_colocate_memory(c: RuleContext) -> None:
    """Colocate: vLLM takes vllm_gpu_memory_utilization of each training GPU before training starts; what the
    training needs (workbench estimate) has to fit in the rest."""
    if not _on(c) or _mode(c) != "colocate":
        return
    share = c.num("vllm_gpu_memory_utilization", 0.3)
    if share is None or not 0 < share <= 1:
        return  # rules.RANGES reports it
    gpu_bytes = _gpu_bytes(c)
    try:
        from workbench.core.estimate import estimate_recipe

        need = estimate_recipe(c.r, c.runs_dir).gpu_total
    except (ValueError, TypeError, OSError, KeyError):
        return
    if need > (1 - share) * gpu_bytes:
        c.add(c.key("vllm_gpu_memory_utilization"), f"vLLM (colocate) takes {share:g} of each {gpu_bytes / 1e9:.3g} "
              f"GB GPU, leaving {(1 - share) * gpu_bytes / 1e9:.3g} GB, and training needs about {need / 1e9:.3g} GB "
              "(workbench estimate)", "lower vllm_gpu_memory_utilization, use LoRA or ZeRO, or vllm_mode = "
              '"server" with [vllm] server_gpus', severity="warning")


def vllm_server_mode(c: RuleContext) -> None:
    """Server mode: with [vllm] server_gpus the workbench starts `trl vllm-serve` on those GPUs (indices on this
    machine, each once, none of them the trainer's) on a loopback port it passes to the trainer; without them the
    trainer waits for a server someone else started (VLLMClient: ConnectionError after vllm_server_timeout)."""
    if not _on(c) or _mode(c) != "server":
        return
    raw = c.r.get("vllm.server_gpus")
    if not raw:
        c.add(c.key("vllm_mode"), "vllm_mode = \"server\" without [vllm] server_gpus: the workbench starts no "
              "server, and the trainer connects to vllm_server_host:vllm_server_port (or vllm_server_base_url), "
              "where a `trl vllm-serve` you started must answer", "[vllm] server_gpus = [1] starts one for the run "
              "on GPU 1", severity="warning")
        return
    if not isinstance(raw, list):
        return  # the type problem is reported by the structure check
    gpus = vllm_server.server_gpus(c.r)
    if len(gpus) != len(raw) or any(g < 0 for g in gpus):
        c.add("vllm.server_gpus", f"server_gpus = {raw!r} should be GPU indices (0, 1, ...)", "e.g. server_gpus = [1]")
        return
    if len(set(gpus)) != len(gpus):
        c.add("vllm.server_gpus", f"server_gpus = {raw!r} names a GPU twice", "list each GPU once")
    for key in MANAGED_SERVER_KEYS:
        if c.is_set(key):
            c.add(f"train.{key}", f"{key} is managed by the workbench when it starts the server ([vllm] "
                  "server_gpus): it listens on a loopback port and tells the trainer", "remove it ([vllm] port "
                  "fixes the port), or remove [vllm] server_gpus to connect to your own server")
    machines = as_int(c.r.get("launch.num_machines", 1)) or 1
    if machines > 1:
        c.add("vllm.server_gpus", "the workbench starts a vLLM server only for a single-machine run",
              "start `trl vllm-serve` yourself on one machine and set train.vllm_server_host, without server_gpus")
    _server_gpus_fit(c, gpus)
    _server_model(c)


def _server_gpus_fit(c: RuleContext, gpus: list[int]) -> None:
    count, _ = vllm_server.gpu_inventory()
    if count == 0:
        return  # vllm_needs_a_gpu says so
    outside = [g for g in gpus if g >= count]
    if outside:
        c.add("vllm.server_gpus", f"GPU {outside[0]} does not exist: this machine has {count} GPU(s), 0 to "
              f"{count - 1}", f"choose server_gpus among 0..{count - 1}")
        return
    visible = vllm_server.visible_gpus(count)
    if visible is None:
        c.add("vllm.server_gpus", "CUDA_VISIBLE_DEVICES names GPUs by UUID here, and server_gpus are indices",
              "set CUDA_VISIBLE_DEVICES to indices (or unset it) before launching")
        return
    hidden = [g for g in gpus if g not in visible]
    if hidden:
        c.add("vllm.server_gpus", f"GPU {hidden[0]} is hidden by CUDA_VISIBLE_DEVICES (visible: {visible})",
              "choose visible GPUs, or widen CUDA_VISIBLE_DEVICES")
        return
    left = vllm_server.training_gpus(gpus, visible)
    nproc = as_int(c.r.get("launch.num_processes", 1)) or 1
    if len(left) < nproc:
        c.add("vllm.server_gpus", f"server_gpus {gpus} leave {len(left)} GPU(s) {left} for training, and "
              f"num_processes = {nproc} needs {nproc} (the server's GPUs and the trainer's must be different)",
              f"use fewer server GPUs or set [launch] num_processes = {max(len(left), 1)}")


def _server_model(c: RuleContext) -> None:
    """The server loads the model before the trainer does, so a built-in model must be built already."""
    raw = c.r.get("model.path")
    if not (c.files and isinstance(raw, str) and raw.startswith("builtin:")):
        return
    from workbench.core.models import builtin_dir

    name = raw.split(":", 1)[1]
    if not (builtin_dir(name) / "config.json").is_file():
        c.add("model.path", f"the vLLM server loads {raw} before the trainer builds it, and it is not built yet",
              f"build it once: python -m workbench.train.builtin {name}")


def vllm_section(c: RuleContext) -> None:
    """[vllm] is the workbench's server (GRPO/RLOO, server mode); anywhere else it would silently do nothing."""
    section = c.r.section("vllm")
    if not section:
        return
    if not c.stage.vllm:
        c.add("vllm", f"[vllm] applies to stages {', '.join(vllm_server.STAGES)}, not {c.stage.name}",
              "remove [vllm]")
    elif not (_on(c) and _mode(c) == "server"):
        c.add("vllm", "[vllm] is used only with train.use_vllm = true and train.vllm_mode = \"server\"",
              'set both in [train] (colocate mode needs no [vllm]), or remove [vllm]', severity="warning")
    args = section.get("args", [])
    if isinstance(args, list) and not all(isinstance(a, str) for a in args):
        c.add("vllm.args", "args should be strings, one per word", 'e.g. args = ["--enforce-eager"]')


def _gpu_bytes(c: RuleContext) -> float:
    from workbench.core import gpus

    snap = gpus.snapshot()
    if snap.available and snap.gpus:
        return float(min(g.memory_total for g in snap.gpus))
    gb = as_num(c.r.get("launch.gpu_memory_gb", 80)) or 80
    return gb * 1e9


def _installed_version(dist: str) -> tuple[int, ...] | None:
    from importlib import metadata

    try:
        raw = metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None
    parts = []
    for word in raw.split("+")[0].split(".")[:3]:
        digits = re.match(r"\d+", word)  # "0rc1" -> 0
        if not digits:
            break
        parts.append(int(digits.group()))
    return tuple(parts) + (0,) * (3 - len(parts)) if parts else None


VLLM_RULES = (vllm_needs_a_gpu, vllm_tensor_parallel, vllm_colocate_memory, vllm_server_mode, vllm_section)
