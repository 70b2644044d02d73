"""What trl and transformers enforce when a trainer is built or takes its first steps, checked before launch.

A rule reads the recipe as the training child will see it (the recipe's [train], then the values the child adds:
workbench defaults and the stage builder's own, then the trl field defaults from the cached schema) and reports
Problems through ``RuleContext.add``. This module holds the context, the numeric ranges of [train] fields, the
checks of ``TrainingArguments`` (which every trl config inherits) and the optional packages a setting needs.
Per-trainer rules: rules_stages.py. Dataset rows and model files: rules_data.py.

Light: no torch/transformers/trl import. Optional packages are looked up with ``importlib.util.find_spec`` on a
top-level name, which imports nothing. The facts come from trl 1.12 / transformers 5.23 (their __post_init__,
Trainer._validate_args, the trainers' __init__); each rule says what it mirrors.
"""
from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path
from typing import Callable

from workbench.core.peft_methods import MERGEABLE, method_of
from workbench.core.recipe import Recipe
from workbench.core.stages import STAGES, Range, Stage

# What the training child adds to [train] (workbench/train/entry.py train_kwargs): keep in step. The stage
# builders' own additions are their declaration's ``defaults`` (core/stages.py), which the builders read.
WORKBENCH_TRAIN_DEFAULTS = {"logging_steps": 1, "report_to": "none", "save_total_limit": 3, "disable_tqdm": True}

# key -> allowed range; checked for every stage whose config has the key (types are checked before).
RANGES = {
    "learning_rate": Range(0, True), "temperature": Range(0, True), "num_generations": Range(2),
    "per_device_train_batch_size": Range(1), "gradient_accumulation_steps": Range(1),
    "max_completion_length": Range(1), "max_length": Range(1), "logging_steps": Range(0, True), "beta": Range(0),
    "num_train_epochs": Range(0, True), "warmup_ratio": Range(0),
    # TrainingArguments._validate_args / the step callbacks
    "warmup_steps": Range(0), "save_steps": Range(0, True), "eval_steps": Range(0, True),
    "torch_empty_cache_steps": Range(1), "dataloader_num_workers": Range(0),
    # generation (transformers' logits processors raise at the first generate)
    "top_p": Range(0, False, 1), "min_p": Range(0, False, 1), "top_k": Range(0), "repetition_penalty": Range(0, True),
    # GRPO / RLOO / KTO / PPO
    "num_iterations": Range(1), "generation_batch_size": Range(1), "steps_per_generation": Range(1),
    "desirable_weight": Range(0), "undesirable_weight": Range(0),
    "num_mini_batches": Range(1), "num_ppo_epochs": Range(1), "local_rollout_forward_batch_size": Range(1),
    "response_length": Range(1), "total_episodes": Range(1), "num_sample_generations": Range(0),
    # vLLM (a share of each GPU's memory; the tensor parallel size)
    "vllm_gpu_memory_utilization": Range(0, True, 1), "vllm_tensor_parallel_size": Range(1),
}


def range_problem(stage: str, key: str, value) -> tuple[str, str] | None:
    """(message, hint) when a number is outside the key's range; None when it fits or the key has no range."""
    known = STAGES.get(stage)
    rule = (known.ranges.get(key) if known else None) or RANGES.get(key)
    if rule is None or not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    for bound, is_open, below in ((rule.low, rule.low_open, True), (rule.high, rule.high_open, False)):
        if bound is None:
            continue
        bad = math.isnan(value) or (value <= bound if is_open else value < bound) if below else \
            (value >= bound if is_open else value > bound)
        if bad:
            op = (">" if is_open else ">=") if below else ("<" if is_open else "<=")
            return f"{value} must be {op} {bound:g}", f"set {key} {op} {bound:g}"
    return None


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def gpu_visible() -> bool:
    """A light guess (no torch): does this machine show a GPU device to processes?"""
    nvidia = Path("/proc/driver/nvidia/gpus")
    return (nvidia.is_dir() and any(nvidia.iterdir())) or Path("/dev/nvidia0").exists() or Path("/dev/kfd").exists()


def as_int(v) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def as_num(v) -> float | None:
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v) else None


class RuleContext:
    """The recipe as the training child will build its config, and where problems go."""

    def __init__(self, recipe: Recipe, stage: Stage, fields: dict, add: Callable, runs_dir: Path | None = None,
                 files: bool = True):
        self.r, self.stage, self.fields, self.add = recipe, stage, fields, add
        self.runs_dir, self.files = runs_dir, files
        self.train = recipe.section("train")
        self.added = {**WORKBENCH_TRAIN_DEFAULTS, **stage.defaults}
        launch = recipe.section("launch")
        nproc, machines = as_int(launch.get("num_processes", 1)), as_int(launch.get("num_machines", 1))
        self.world = max(nproc or 1, 1) * max(machines or 1, 1)
        self.zero = as_int(launch.get("zero_stage", 0)) or 0
        self.deepspeed = self.zero > 0 or launch.get("backend") == "deepspeed"
        self.lora = method_of(recipe) in MERGEABLE  # a weight adapter (LoRA, DoRA, QLoRA, IA3) on target modules

    @property
    def config(self) -> str:
        return self.stage.config_class or ""

    def is_set(self, key: str) -> bool:
        return key in self.train

    def get(self, key: str, fallback=None):
        if key in self.train:
            return self.train[key]
        if key in self.added:
            return self.added[key]
        if key in self.fields:
            return self.fields[key].get("default")
        return fallback

    def int(self, key: str, fallback=None) -> int | None:
        return as_int(self.get(key, fallback))

    def num(self, key: str, fallback=None) -> float | None:
        return as_num(self.get(key, fallback))

    def key(self, *names: str) -> str:
        """train.<the first of names the recipe sets>, else train.<names[0]>: where the problem points."""
        return "train." + next((n for n in names if n in self.train), names[0])

    def has(self, key: str) -> bool:
        """The stage's config class has this field (True when the schema is unavailable: check anyway)."""
        return not self.fields or key in self.fields


# -- TrainingArguments / Trainer ---------------------------------------------------------------------------------
NO_EVAL = "the workbench passes no eval dataset"


def eval_needs_a_dataset(c: RuleContext) -> None:
    """Trainer._validate_args: eval_strategy != "no" without an eval_dataset raises. An [eval] section gives one
    to the stages declared ``trl_eval`` (core/stages.py; rules_eval.py checks its data)."""
    from workbench.core.rules_eval import TRL_EVAL_STAGES

    s = c.get("eval_strategy", "no")
    if not (c.is_set("eval_strategy") and isinstance(s, str) and s != "no"):
        return
    if not c.stage.trl_eval:
        c.add("train.eval_strategy", f'eval_strategy = "{s}" evaluates on an eval dataset, and {NO_EVAL} to stage '
              f"{c.stage.name} (only to {', '.join(TRL_EVAL_STAGES)}): the trainer would stop at start",
              'remove eval_strategy; an [eval] section evaluates generations on held-out prompts (eval/* metrics) '
              "for every stage")
    elif "eval" not in c.r.data:
        c.add("train.eval_strategy", f'eval_strategy = "{s}" evaluates on an eval dataset, and {NO_EVAL} without '
              "an [eval] section: the trainer would stop at start (\"you didn't pass an eval_dataset\")",
              '[eval] data = "held-out.jsonl" (a file in the stage\'s format), or an [eval] section without data '
              'to hold out the last rows of [data]; or remove eval_strategy')


def trl_gets_eval(c: RuleContext) -> bool:
    """An [eval] section hands trl an eval_dataset, for the stages whose trainers take one."""
    return c.stage.trl_eval and "eval" in c.r.data


def _evaluates(c: RuleContext) -> bool:
    s = c.get("eval_strategy", "no")
    return trl_gets_eval(c) and isinstance(s, str) and s != "no"


def load_best_needs_eval(c: RuleContext) -> None:
    """TrainingArguments: load_best_model_at_end needs eval_strategy == save_strategy (unless save "best")."""
    save = c.get("save_strategy", "steps")
    if c.get("load_best_model_at_end") is not True or save in ("no", "best"):
        return
    if not trl_gets_eval(c):
        c.add("train.load_best_model_at_end", f'load_best_model_at_end needs an evaluation at every save '
              f'(eval_strategy = save_strategy = "{save}"), and {NO_EVAL} without an [eval] section (stages '
              "sft, pretrain, reward, dpo, kto)",
              "remove load_best_model_at_end (the run keeps its last checkpoints and final/), or add [eval]")
    elif c.get("eval_strategy", "no") != save:
        c.add("train.load_best_model_at_end", f'load_best_model_at_end needs eval_strategy = save_strategy, got '
              f'eval_strategy = "{c.get("eval_strategy", "no")}" and save_strategy = "{save}"',
              f'set eval_strategy = "{save}" (and eval_steps = save_steps)')


def save_best_needs_eval(c: RuleContext) -> None:
    """Trainer._validate_args: save_strategy "best" needs metric_for_best_model; it saves only after an eval."""
    if c.get("save_strategy") != "best":
        return
    if not _evaluates(c):
        c.add("train.save_strategy", 'save_strategy = "best" saves only when an evaluation improves '
              f"metric_for_best_model; {NO_EVAL} without an [eval] section and eval_strategy, so no checkpoint "
              "would ever be written", 'use save_strategy = "steps" (with save_steps) or "epoch"')
    elif c.get("metric_for_best_model") is None:
        c.add("train.metric_for_best_model", 'save_strategy = "best" needs metric_for_best_model: the trainer '
              "stops at start without it", 'e.g. metric_for_best_model = "eval_loss"')


def scheduler_needs_eval(c: RuleContext) -> None:
    """TrainingArguments: reduce_lr_on_plateau and greedy need an eval strategy."""
    s = c.get("lr_scheduler_type")
    if s in ("reduce_lr_on_plateau", "greedy") and not _evaluates(c):
        c.add("train.lr_scheduler_type", f'lr_scheduler_type "{s}" steps on evaluation results, and {NO_EVAL} '
              "without an [eval] section and eval_strategy", 'use "linear", "cosine" or "constant_with_warmup"')


def scheduler_arguments(c: RuleContext) -> None:
    """transformers.optimization: min-lr cosine needs one of min_lr / min_lr_rate; polynomial needs lr_end < lr."""
    s, kwargs = c.get("lr_scheduler_type"), c.get("lr_scheduler_kwargs") or {}
    if not isinstance(kwargs, dict):
        return
    if s in ("cosine_with_min_lr", "cosine_warmup_with_min_lr"):
        given = [k for k in ("min_lr", "min_lr_rate") if k in kwargs]
        if len(given) != 1:
            what = "both min_lr and min_lr_rate" if given else "neither min_lr nor min_lr_rate"
            c.add(c.key("lr_scheduler_kwargs", "lr_scheduler_type"), f'lr_scheduler_type "{s}" needs exactly one '
                  f"of min_lr / min_lr_rate in lr_scheduler_kwargs, got {what}",
                  "e.g. lr_scheduler_kwargs = { min_lr_rate = 0.1 }")
    lr, lr_end = c.num("learning_rate"), as_num(kwargs.get("lr_end", 1e-7))
    if s == "polynomial" and lr is not None and lr_end is not None and lr_end >= lr:
        c.add(c.key("lr_scheduler_kwargs", "learning_rate"), f"polynomial decay ends at lr_end = {lr_end:g}, "
              f"which is not below learning_rate = {lr:g}", "raise learning_rate or lower lr_scheduler_kwargs.lr_end")


def whole_steps(c: RuleContext) -> None:
    """TrainingArguments: logging/save/eval steps above 1 count steps and must be whole numbers."""
    for key in ("logging_steps", "save_steps", "eval_steps"):
        v = as_num(c.train.get(key))
        if v is not None and v > 1 and v != int(v):
            c.add(f"train.{key}", f"{key} = {v:g}: above 1 it counts steps and must be a whole number (below 1 "
                  "it is a fraction of the run)", f"e.g. {key} = {int(v)}")


def one_precision(c: RuleContext) -> None:
    """TrainingArguments: "At most one of fp16 and bf16 can be True" (also launch.mixed_precision's choice)."""
    mp = c.r.get("launch.mixed_precision", "auto")

    def on(k: str) -> bool:  # the child sets bf16/fp16 from launch.mixed_precision, then the recipe's [train]
        if k in c.train:
            return c.train[k] is True
        return k in ("bf16", "fp16") and mp == k

    for a, b in (("bf16", "fp16"), ("bf16_full_eval", "fp16_full_eval")):
        if on(a) and on(b):
            by_launch = next((k for k in (a, b) if k not in c.train), None)
            why = f' (launch.mixed_precision = "{mp}" turns on {by_launch})' if by_launch else ""
            c.add(f"train.{b if by_launch == a else a}", f"{a} and {b} are both on{why}: a run trains in one of "
                  "them", "choose the precision once: launch.mixed_precision, and no bf16/fp16 in [train]")


def bf16_needs_a_device(c: RuleContext) -> None:
    """TrainingArguments: bf16 without use_cpu on a machine with no bf16 GPU raises."""
    bf16 = c.train.get("bf16", c.r.get("launch.mixed_precision") == "bf16")
    if c.train.get("use_cpu") is False and bf16 is True and not gpu_visible():
        c.add("train.use_cpu", "bf16 with use_cpu = false needs a GPU, and this machine shows none (transformers: "
              "\"Your setup doesn't support bf16/gpu\")", "remove use_cpu = false (the workbench sets it on CPU)",
              severity="warning")


def prefetch_needs_workers(c: RuleContext) -> None:
    """TrainingArguments: dataloader_prefetch_factor only with dataloader_num_workers > 0."""
    if c.get("dataloader_prefetch_factor") is not None and c.int("dataloader_num_workers", 0) == 0:
        c.add("train.dataloader_prefetch_factor", "dataloader_prefetch_factor applies only to worker processes, "
              "and dataloader_num_workers is 0", "set dataloader_num_workers >= 1, or remove the prefetch factor")


# optim name prefix -> (module trainer_optimizer needs, pip name)
OPTIM_PACKAGES = (
    (("adamw_bnb_8bit", "adamw_8bit", "paged_", "ademamix", "lion_", "rmsprop_bnb"), "bitsandbytes", "bitsandbytes"),
    (("galore_",), "galore_torch", "galore-torch"), (("apollo_",), "apollo_torch", "apollo-torch"),
    (("adamw_torch_4bit", "adamw_torch_8bit"), "torchao", "torchao"),
    (("schedule_free_",), "schedulefree", "schedulefree"), (("lomo", "adalomo"), "lomo_optim", "lomo-optim"),
    (("grokadamw",), "grokadamw", "grokadamw"), (("stable_adamw",), "optimi", "torch-optimi"),
    (("adamw_anyprecision",), "torchdistx", "torchdistx"), (("adamw_torch_xla",), "torch_xla", "torch_xla"),
    (("adamw_torch_npu_fused",), "torch_npu", "torch_npu"),
)


def optimizer_needs(c: RuleContext) -> None:
    """transformers.trainer_optimizer: optional packages; GaLore/APOLLO need optim_target_modules (layer-wise:
    no gradient accumulation, one process)."""
    optim = c.get("optim")
    if not c.is_set("optim") or not isinstance(optim, str):
        return
    for prefixes, module, pip in OPTIM_PACKAGES:
        if optim.startswith(prefixes) and not installed(module):
            c.add("train.optim", f'optim "{optim}" needs the {pip} package, which is not installed',
                  f"pip install {pip}, or use adamw_torch")
    if optim.startswith(("galore_", "apollo_")):
        if c.get("optim_target_modules") is None:
            c.add("train.optim", f'optim "{optim}" needs optim_target_modules', 'e.g. optim_target_modules = '
                  '"all-linear"')
        if optim.endswith("layerwise") and (c.int("gradient_accumulation_steps", 1) != 1 or c.world > 1):
            c.add("train.optim", f'layer-wise "{optim}" supports neither gradient accumulation nor several '
                  "processes", "set gradient_accumulation_steps = 1 and one process, or drop _layerwise")


# report_to name -> module its callback imports (transformers.integrations)
REPORTERS = {"azure_ml": "azureml", "comet_ml": "comet_ml", "mlflow": "mlflow", "neptune": "neptune",
             "tensorboard": "tensorboard", "trackio": "trackio", "wandb": "wandb", "codecarbon": "codecarbon",
             "clearml": "clearml", "dagshub": "dagshub", "flyte": "flytekit", "dvclive": "dvclive",
             "swanlab": "swanlab", "kubeflow": "kubeflow"}


def reporters_installed(c: RuleContext) -> None:
    """transformers.integrations: unknown report_to names raise; each logger's callback needs its package."""
    v = c.train.get("report_to")
    names = [v] if isinstance(v, str) else v if isinstance(v, list) else []
    for name in names:
        if name in ("none", "all") or not isinstance(name, str):
            continue
        if name not in REPORTERS:
            from workbench.core.problems import did_you_mean
            c.add("train.report_to", f'report_to "{name}" is not a logger transformers knows',
                  did_you_mean(name, REPORTERS) or f"one of: none, all, {', '.join(REPORTERS)}")
        elif not installed(REPORTERS[name]) and not (name == "tensorboard" and installed("tensorboardX")):
            c.add("train.report_to", f'report_to "{name}" needs the {name} package, which is not installed',
                  f"pip install {name}, or report_to = \"none\" (the workbench keeps its own metrics)")


def kernels_installed(c: RuleContext) -> None:
    """use_liger_kernel needs liger-kernel; use_vllm needs vllm (the trainers raise ImportError). The training
    child runs this interpreter, so find_spec here answers for it. The rest of vLLM's checks: rules_vllm.py."""
    for key, module, pip in (("use_liger_kernel", "liger_kernel", "liger-kernel"),
                             ("use_vllm", "vllm", "'workbench[vllm]'")):
        if c.train.get(key) is True and not installed(module):
            c.add(f"train.{key}", f"{key} needs the {module.replace('_', '-')} package, which is not installed",
                  f"pip install {pip}, or remove {key}")


def batch_search(c: RuleContext) -> None:
    """auto_find_batch_size: GRPO/RLOO reject it (prompt groups); Trainer rejects it under ZeRO-3."""
    if c.train.get("auto_find_batch_size") is not True:
        return
    if c.stage.groups:
        c.add("train.auto_find_batch_size", f"{c.stage.name.upper()} cannot shrink the batch on out-of-memory: "
              "the generation batch must hold whole groups of num_generations completions",
              "remove auto_find_batch_size and lower per_device_train_batch_size")
    elif c.zero == 3:
        c.add("train.auto_find_batch_size", "auto_find_batch_size does not work under DeepSpeed ZeRO-3",
              "remove it, or use zero_stage 1 or 2")


def checkpointing(c: RuleContext) -> None:
    """TrainingArguments: gradient_checkpointing is a deprecated alias; when both are set, activation_checkpointing
    wins silently. Trainer: FSDP's own activation checkpointing and the argument cannot both be on (every trl
    config turns gradient_checkpointing on by default)."""
    grad, act = c.train.get("gradient_checkpointing"), c.train.get("activation_checkpointing")
    if isinstance(grad, bool) and isinstance(act, bool) and grad != act:
        c.add("train.gradient_checkpointing", f"gradient_checkpointing = {str(grad).lower()} is ignored: "
              f"activation_checkpointing = {str(act).lower()} takes precedence", "keep only activation_checkpointing",
              severity="warning")
    fsdp_config = c.train.get("fsdp_config")
    on = act if isinstance(act, bool) else c.get("gradient_checkpointing", False)
    if c.train.get("fsdp") and isinstance(fsdp_config, dict) and fsdp_config.get("activation_checkpointing") \
            and on is True:
        c.add("train.fsdp_config", "FSDP's activation_checkpointing and the activation_checkpointing argument "
              + ("(on by default in trl) " if not c.is_set("gradient_checkpointing") and act is None else "")
              + "cannot both be on", "set activation_checkpointing = false in [train] to use FSDP's")


def fsdp_needs_processes(c: RuleContext) -> None:
    """Trainer: fsdp only in distributed training, never together with DeepSpeed."""
    fsdp = c.train.get("fsdp")
    if not fsdp:
        return
    if c.deepspeed:
        c.add("train.fsdp", "fsdp and DeepSpeed ([launch] zero_stage / backend) cannot be used together",
              "choose one: remove fsdp, or set zero_stage = 0 and a torchrun backend")
    elif c.r.get("launch.backend", "python") == "python":
        c.add("train.fsdp", 'fsdp works only in distributed training, and backend "python" starts one process',
              'set [launch] backend = "torchrun" (or "accelerate") with num_processes >= 2')


def gpu_count() -> int:
    """GPUs this machine shows (NVIDIA's /proc entries, narrowed by CUDA_VISIBLE_DEVICES); 0 when none or unknown."""
    nvidia = Path("/proc/driver/nvidia/gpus")
    n = len(list(nvidia.iterdir())) if nvidia.is_dir() else 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if n and visible is not None:
        n = min(n, len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"]))
    return n


def processes_per_gpu(c: RuleContext) -> None:
    """With GPUs, each process of a machine takes cuda:LOCAL_RANK: more processes than GPUs fail at start."""
    nproc, gpus = as_int(c.r.get("launch.num_processes", 1)), gpu_count()
    if gpus and nproc and nproc > gpus and c.r.get("launch.num_machines", 1) == 1:
        c.add("launch.num_processes", f"num_processes = {nproc}, but this machine shows {gpus} GPU(s); every "
              "process needs its own", f"set num_processes <= {gpus} (or train.use_cpu = true)", severity="warning")


def launch_packages(c: RuleContext) -> None:
    """DeepSpeed ZeRO and the deepspeed backend need the deepspeed package in the training environment."""
    if c.deepspeed and not installed("deepspeed"):
        key = "launch.zero_stage" if c.zero > 0 else "launch.backend"
        c.add(key, "DeepSpeed is not installed here", "pip install deepspeed, or zero_stage = 0 with backend "
              '"torchrun"')


TRAIN_RULES = (eval_needs_a_dataset, load_best_needs_eval, save_best_needs_eval, scheduler_needs_eval,
               scheduler_arguments, whole_steps, one_precision, bf16_needs_a_device, prefetch_needs_workers,
               optimizer_needs, reporters_installed, kernels_installed, batch_search, checkpointing,
               fsdp_needs_processes, processes_per_gpu, launch_packages)
