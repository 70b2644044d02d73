"""Per-trainer rules: what GRPO/RLOO, DPO, KTO, SFT, Distillation and PPO check in their configs and __init__
(or on their first step), as pure-Python checks over a ``RuleContext`` (see rules.py).

Light: no torch/transformers/trl import. Value sets are trl 1.12's (the trainers' loss dispatch and checks).
"""
from __future__ import annotations

from workbench.core.problems import did_you_mean
from workbench.core.rules import RuleContext, as_int

GRPO_LOSSES = ("grpo", "bnpo", "dr_grpo", "dapo", "luspo", "cispo", "sapo", "vespo")
DPO_LOSSES = ("sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
              "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm")
F_DIVERGENCE_LOSSES = {"sigmoid", "sigmoid_norm", "hinge", "ipo", "exo_pair", "robust", "discopop", "sft"}
SFT_CONFIG = "trl:SFTConfig"
# VLLMGeneration: "vllm_mode must be either 'server' or 'colocate'"; vLLM's model implementations
VLLM_CHOICES = {"vllm_mode": ("server", "colocate"), "vllm_model_impl": ("vllm", "transformers")}
# (config class or "*") -> {field: accepted values}; a value outside fails at the first step or at start.
CHOICES = {
    "*": {"train_sampling_strategy": ("random", "sequential", "group_by_length", "batch_rebalance"),
          "ddp_backend": ("nccl", "gloo", "mpi", "xccl", "hccl", "cncl", "mccl")},
    "trl:GRPOConfig": {"loss_type": GRPO_LOSSES, "importance_sampling_level": ("token", "sequence"),
                       "scale_rewards": ("group", "batch", "none"), **VLLM_CHOICES,
                       "vllm_importance_sampling_mode": ("token_truncate", "token_mask", "sequence_truncate",
                                                         "sequence_mask")},
    "trl:RLOOConfig": VLLM_CHOICES,
    "trl:DistillationConfig": {"vllm_mode": ("server", "colocate")},
    "trl:DPOConfig": {"f_divergence_type": ("reverse_kl", "forward_kl", "js_divergence", "alpha_divergence"),
                      "truncation_mode": ("keep_start", "keep_end")},
    "trl:KTOConfig": {"loss_type": ("kto", "apo_zero_unpaired")},
    SFT_CONFIG: {"loss_type": ("nll", "dft", "chunked_nll"), "truncation_mode": ("keep_start", "keep_end"),
                 "packing_strategy": ("bfd", "bfd_split", "wrapped", "bfd-requeue")},
}


def known_values(c: RuleContext) -> None:
    """String fields whose value trl dispatches on ("Unknown loss type", "Invalid value for scale_rewards")."""
    table = {**CHOICES["*"], **CHOICES.get(c.config, {})}
    for key, values in table.items():
        v = c.train.get(key)
        if isinstance(v, str) and v not in values and c.has(key):
            c.add(f"train.{key}", f'{key} "{v}" is not one trl knows for stage {c.stage.name}',
                  did_you_mean(v, values) or f"one of: {', '.join(values)}")


def lm_head_adapted(c: RuleContext) -> bool:
    """peft.target_modules names lm_head ("all-linear" leaves the output layer out)."""
    t = c.r.get("peft.target_modules", "all-linear")
    names = [t] if isinstance(t, str) else t if isinstance(t, list) else []
    return c.lora and any(isinstance(n, str) and "lm_head" in n for n in names)


# -- GRPO / RLOO -------------------------------------------------------------------------------------------------
def generation_batch(c: RuleContext) -> None:
    """GRPOConfig/RLOOConfig.__post_init__: generation_batch_size vs steps_per_generation, the global batch and
    num_generations (per_device_train_batch_size counts completions, not prompts)."""
    if not c.stage.groups:
        return
    gens = c.int("num_generations", c.stage.trl_defaults.get("num_generations"))
    bs, accum = c.int("per_device_train_batch_size", 8), c.int("gradient_accumulation_steps", 1)
    if not all(v is not None and v > 0 for v in (gens, bs, accum)):
        return  # type and range problems are reported elsewhere
    gen_batch, spg = c.train.get("generation_batch_size"), c.train.get("steps_per_generation")
    if gen_batch is not None and spg is not None:
        c.add("train.generation_batch_size", "generation_batch_size and steps_per_generation cannot both be set",
              "remove one of them")
        return
    global_batch = bs * c.world
    if as_int(gen_batch) and gen_batch > 0:
        if gen_batch % global_batch:
            c.add("train.generation_batch_size", f"generation_batch_size ({gen_batch}) must be a multiple of the "
                  f"global batch ({global_batch} = per_device_train_batch_size {bs} x {c.world} processes)",
                  f"use a multiple of {global_batch}, or steps_per_generation instead")
            return
    else:
        steps = as_int(spg) if as_int(spg) and spg > 0 else accum
        gen_batch = global_batch * steps
    if gen_batch % gens:
        fits = [n for n in range(2, gen_batch + 1) if gen_batch % n == 0]
        c.add(c.key("per_device_train_batch_size", "num_generations"), f"the generation batch ({gen_batch} = "
              f"per_device_train_batch_size {bs} x processes {c.world} x steps per generation) is not divisible "
              f"by num_generations ({gens})", f"per_device_train_batch_size counts completions, not prompts: make "
              f"it a multiple of {gens}, or use num_generations in {fits[:6]}")


def prompts_per_batch(c: RuleContext) -> int | None:
    """Prompts one generation batch takes (GRPO/RLOO), as the RepeatSampler groups them; None if unknown."""
    gens = c.int("num_generations", c.stage.trl_defaults.get("num_generations"))
    bs, accum = c.int("per_device_train_batch_size", 8), c.int("gradient_accumulation_steps", 1)
    if not all(v is not None and v > 0 for v in (gens, bs, accum)):
        return None
    gen_batch = as_int(c.train.get("generation_batch_size"))
    spg = as_int(c.train.get("steps_per_generation"))
    gen_batch = gen_batch if gen_batch and gen_batch > 0 else bs * c.world * (spg if spg and spg > 0 else accum)
    return gen_batch // gens or None


def reference_sync(c: RuleContext) -> None:
    """sync_ref_model: GRPO/RLOO need beta > 0 (no reference otherwise); none of them with a LoRA adapter; DPO and
    KTO not with precompute_ref_log_probs."""
    if c.train.get("sync_ref_model") is not True:
        return
    if c.stage.groups and c.num("beta", 0.0) == 0.0:
        c.add(c.key("sync_ref_model"), "sync_ref_model needs a reference model, and beta = 0 loads none"
              + (" (GRPO's default beta is 0.0)" if not c.is_set("beta") else ""),
              "set beta > 0 (e.g. 0.04), or remove sync_ref_model")
    if c.lora:
        c.add("train.sync_ref_model", "sync_ref_model does not work with a LoRA adapter (the reference is the base "
              "model with the adapter off)", 'remove sync_ref_model, or use [peft] method = "full"')
    if c.stage.name in ("dpo", "kto") and c.train.get("precompute_ref_log_probs") is True:
        c.add("train.sync_ref_model", "sync_ref_model updates the reference, so precomputed reference log-probs "
              "would be stale", "remove precompute_ref_log_probs or sync_ref_model")


def reward_weights(c: RuleContext) -> None:
    """GRPOTrainer/RLOOTrainer: one reward weight per reward function."""
    w, funcs = c.train.get("reward_weights"), c.r.get("rewards.funcs", [])
    if c.stage.groups and isinstance(w, list) and isinstance(funcs, list) and len(w) != len(funcs):
        c.add("train.reward_weights", f"{len(w)} reward weights for {len(funcs)} reward functions",
              "give one weight per [rewards] funcs entry (or use [rewards] weights)")


def grpo_logging_and_vllm(c: RuleContext) -> None:
    """GRPOConfig.__post_init__: the hub repo for completions needs log_completions; importance-sampling clip
    bounds must be ordered."""
    if c.stage.name != "grpo":
        return
    if c.train.get("log_completions_hub_repo") and c.get("log_completions") is not True:
        c.add("train.log_completions_hub_repo", "log_completions_hub_repo uploads logged completions, and "
              "log_completions is off", "set log_completions = true, or remove log_completions_hub_repo")
    lo, hi = c.num("vllm_importance_sampling_clip_min"), c.num("vllm_importance_sampling_clip_max")
    if lo is not None and hi is not None and lo >= hi:
        c.add(c.key("vllm_importance_sampling_clip_min", "vllm_importance_sampling_clip_max"),
              f"vllm_importance_sampling_clip_min ({lo:g}) must be below vllm_importance_sampling_clip_max ({hi:g})",
              "swap or widen the bounds")


def grpo_loss_combinations(c: RuleContext) -> None:
    """GRPOTrainer.__init__: VESPO with vLLM importance correction needs a token_* mode (raises); loss type and
    importance_sampling_level combinations trl warns about (the objective is not the paper's)."""
    if c.stage.name != "grpo":
        return
    loss, level = c.get("loss_type", "dapo"), c.get("importance_sampling_level", "token")
    mode = c.get("vllm_importance_sampling_mode", "sequence_mask")
    if loss == "vespo" and c.get("use_vllm") is True and c.get("vllm_importance_sampling_correction", True) is True \
            and mode not in ("token_truncate", "token_mask"):
        c.add(c.key("vllm_importance_sampling_mode", "loss_type"), f'loss type "vespo" with vLLM needs '
              f'vllm_importance_sampling_mode "token_truncate" or "token_mask", got "{mode}"',
              'set vllm_importance_sampling_mode = "token_mask"')
    advice = {("luspo", "token"): 'the "luspo" loss expects importance_sampling_level = "sequence"',
              ("vespo", "sequence"): 'the "vespo" loss weights sequences itself: importance_sampling_level should '
                                     'be "token"'}
    why = advice.get((loss, level))
    if level == "sequence" and loss in ("bnpo", "dr_grpo", "dapo", "cispo"):
        why = f'with importance_sampling_level = "sequence" the "{loss}" loss' + (" (GRPO's default)" if not
              c.is_set("loss_type") else "") + " weights each sequence by its length, unlike the GSPO paper"
    if why:
        c.add(c.key("importance_sampling_level", "loss_type"), why, 'for GSPO use loss_type = "grpo" with '
              'importance_sampling_level = "sequence"', severity="warning")


# -- DPO / KTO ---------------------------------------------------------------------------------------------------
def dpo_losses(c: RuleContext) -> None:
    """DPOConfig/DPOTrainer: known loss types, one weight per loss, f-divergence only with some losses,
    exo_pair needs label smoothing, WPO weighting not with aot."""
    if c.stage.name != "dpo":
        return
    raw = c.get("loss_type", ["sigmoid"])
    losses = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    for loss in losses:
        if isinstance(loss, str) and loss not in DPO_LOSSES:
            c.add("train.loss_type", f'DPO has no loss type "{loss}"',
                  did_you_mean(loss, DPO_LOSSES) or f"one of: {', '.join(DPO_LOSSES)}")
    weights = c.train.get("loss_weights")
    if isinstance(weights, list) and losses and len(weights) != len(losses):
        c.add("train.loss_weights", f"{len(weights)} loss_weights for {len(losses)} loss types",
              "give one weight per loss_type entry")
    fdiv = c.get("f_divergence_type", "reverse_kl")
    if isinstance(fdiv, str) and fdiv != "reverse_kl" and not set(losses) <= F_DIVERGENCE_LOSSES:
        c.add(c.key("f_divergence_type"), f'f_divergence_type "{fdiv}" works only with the losses '
              f"{sorted(F_DIVERGENCE_LOSSES)}", 'use f_divergence_type = "reverse_kl", or one of those losses')
    if "exo_pair" in losses and not (c.num("label_smoothing", 0.0) or 0.0) > 0:
        c.add(c.key("label_smoothing", "loss_type"), 'loss type "exo_pair" needs label_smoothing > 0',
              "set label_smoothing = 1e-3 (the EXO paper's value)")
    if c.train.get("use_weighting") is True and {"aot", "aot_unpaired"} & set(losses):
        c.add("train.use_weighting", "use_weighting (WPO) is not implemented for the aot losses",
              "remove use_weighting, or use another loss_type")


def kto_kl_term(c: RuleContext) -> None:
    """KTOTrainer: the "kto" loss estimates a KL term from neighbours in a batch: sequential sampling, batch > 1."""
    if c.stage.name != "kto" or c.get("loss_type", "kto") == "apo_zero_unpaired":
        return
    strategy = c.get("train_sampling_strategy", "sequential")
    if isinstance(strategy, str) and strategy != "sequential":
        c.add("train.train_sampling_strategy", f'the kto loss needs train_sampling_strategy = "sequential", got '
              f'"{strategy}"', 'remove train_sampling_strategy (KTO defaults to "sequential")')
    bs = c.int("per_device_train_batch_size", 8)
    if bs is not None and bs <= 1:
        c.add("train.per_device_train_batch_size", "the kto loss needs per_device_train_batch_size > 1 (with 1 the "
              "KL term equals the implied reward)", 'set per_device_train_batch_size >= 2, or loss_type = '
              '"apo_zero_unpaired"')


# -- SFT (pretrain, sft, distill-offline) ------------------------------------------------------------------------
def sft_padding_and_loss(c: RuleContext) -> None:
    """SFTTrainer: padding_free without packing needs max_length unset (a TOML recipe cannot unset it);
    chunked_nll (the default) works neither with a LoRA adapter on lm_head nor with the Liger kernel."""
    if c.config != SFT_CONFIG:
        return
    if c.get("padding_free") is True and c.get("packing") is not True:
        c.add("train.padding_free", "padding_free without packing cannot enforce max_length, and trl refuses it",
              "set packing = true (packing_strategy \"bfd\"), or remove padding_free")
    loss = c.get("loss_type") or ("nll" if c.get("use_liger_kernel") is True else "chunked_nll")
    if loss == "chunked_nll":
        if lm_head_adapted(c):
            c.add("peft.target_modules", "the chunked_nll loss (SFT's default) reads lm_head's weight directly, "
                  "so a LoRA adapter on lm_head would never train", 'remove lm_head from target_modules, or set '
                  'train.loss_type = "nll"')
        if c.get("use_liger_kernel") is True:
            c.add("train.loss_type", 'loss_type "chunked_nll" does not work with use_liger_kernel',
                  'use loss_type = "nll" with the Liger kernel')


# -- Distillation ------------------------------------------------------------------------------------------------
def distill_adapter(c: RuleContext) -> None:
    """DistillationTrainer: the loss reads lm_head's weight directly, so a LoRA adapter on lm_head is refused."""
    if c.stage.name == "distill" and lm_head_adapted(c):
        c.add("peft.target_modules", "distillation does not train a LoRA adapter on lm_head (its loss reads the "
              "head's weight directly)", "remove lm_head from target_modules")


def distill_vocabulary(c: RuleContext) -> None:
    """DistillationTrainer: student and teacher must share the vocabulary (vocab_size), read from config.json."""
    if c.stage.name != "distill" or not c.files:
        return
    from workbench.core.rules_data import model_config

    student, teacher = model_config(c, "model.path"), model_config(c, "model.teacher")
    sv, tv = (_vocab(x) for x in (student, teacher))
    if sv and tv and sv != tv:
        c.add("model.teacher", f"the teacher's vocab_size ({tv}) differs from the student's ({sv}); distillation "
              "compares next-token distributions over one vocabulary", "use a teacher with the student's tokenizer")


def _vocab(config: dict | None) -> int | None:
    if not config:
        return None
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    return as_int(text.get("vocab_size")) or as_int(config.get("vocab_size"))


# -- PPO ---------------------------------------------------------------------------------------------------------
def ppo_batches(c: RuleContext) -> None:
    """PPOTrainer.__init__: the per-process batch (per_device x accumulation) splits exactly into num_mini_batches;
    whitening needs mini-batches of >= 8; stop_token_id clashes with the workbench's stop_token = "eos"."""
    if c.stage.name != "ppo":
        return
    bs, accum, nmb = c.int("per_device_train_batch_size", 8), c.int("gradient_accumulation_steps", 1), \
        c.int("num_mini_batches", 1)
    if all(v is not None and v > 0 for v in (bs, accum, nmb)):
        local = bs * accum
        if local % nmb:
            c.add(c.key("num_mini_batches", "per_device_train_batch_size"), f"the batch ({local} = "
                  f"per_device_train_batch_size {bs} x gradient_accumulation_steps {accum}) does not split into "
                  f"num_mini_batches = {nmb} equal parts", f"make the batch a multiple of {nmb}")
        elif c.get("whiten_rewards") is True and local // nmb < 8:
            c.add("train.whiten_rewards", f"whiten_rewards needs mini-batches of at least 8 (here {local // nmb})",
                  "raise the batch, lower num_mini_batches, or remove whiten_rewards")
    if c.train.get("stop_token_id") is not None and c.get("stop_token") == "eos":
        c.add("train.stop_token_id", 'stop_token_id cannot be combined with stop_token = "eos", which the workbench '
              "sets for PPO", "remove stop_token_id (generation stops at the tokenizer's eos)")


STAGE_RULES = (known_values, generation_batch, reference_sync, reward_weights, grpo_logging_and_vllm,
               grpo_loss_combinations, dpo_losses, kto_kl_term, sft_padding_and_loss, distill_adapter,
               distill_vocabulary, ppo_batches)
