"""The stage catalogue: which training stages exist, which trl config class each one fills, what data it takes.

Data only (no trl import): the light side uses it for validation, templates and the TUI's stage picker; the
training child maps each stage name to a builder in ``workbench.train.stages``.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DataFormat:
    name: str
    columns: tuple[str, ...]  # all required
    note: str = ""


@dataclass(frozen=True)
class Stage:
    name: str
    title: str
    config_class: str | None  # "module:Class", imported only in a child process; None: no trl trainer
    formats: tuple[DataFormat, ...]  # the dataset must match one of these
    description: str
    uses_rewards: bool = False
    # Extra model references the stage needs: [model] keys, e.g. ("teacher",) or ("reward_model",).
    needs_models: tuple[str, ...] = ()
    # The [generate] section (K samples per prompt etc.) applies.
    generates: bool = False
    # The knobs the TUI shows on top of the full trl field list.
    key_fields: tuple[str, ...] = ()
    # Values the workbench sets unless the recipe does (CPU-friendly, no external loggers).
    defaults: dict = field(default_factory=dict)


PROMPT_ONLY = DataFormat("prompts", ("prompt",), "prompt (text or chat messages), plus any columns rewards use")
MESSAGES = DataFormat("messages", ("messages",), "multi-turn chat, loss on every assistant turn")
PROMPT_COMPLETION = DataFormat("prompt/completion", ("prompt", "completion"))
INSTRUCTION = DataFormat("instruction", ("instruction", "output"), "Alpaca form; 'input' optional")
TEXT = DataFormat("text", ("text",), "plain text (causal LM)")
PAIRS = DataFormat("preference pairs", ("prompt", "chosen", "rejected"))
PAIRS_IMPLICIT = DataFormat("preference pairs (implicit prompt)", ("chosen", "rejected"))
LABELLED = DataFormat("labelled completions", ("prompt", "completion", "label"), "label: true = desirable")

COMMON_KEYS = ("learning_rate", "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps",
               "logging_steps", "save_steps")

STAGES: dict[str, Stage] = {
    s.name: s
    for s in (
        Stage(
            name="grpo",
            title="GRPO (group relative policy optimisation)",
            config_class="trl:GRPOConfig",
            formats=(PROMPT_ONLY,),
            description="Sample num_generations completions per prompt, score them with reward functions, "
                        "and push the policy toward the better ones (optionally KL-regularised by beta).",
            uses_rewards=True,
            key_fields=("num_generations", "temperature", "beta", "max_completion_length") + COMMON_KEYS,
        ),
        Stage(
            name="rloo",
            title="RLOO (REINFORCE leave-one-out)",
            config_class="trl:RLOOConfig",
            formats=(PROMPT_ONLY,),
            description="Like GRPO, with a leave-one-out baseline over the num_generations samples of a prompt.",
            uses_rewards=True,
            key_fields=("num_generations", "temperature", "beta", "max_completion_length") + COMMON_KEYS,
        ),
        Stage(
            name="pretrain",
            title="Pre-training (next-token prediction)",
            config_class="trl:SFTConfig",
            formats=(TEXT,),
            description="Causal-LM loss on plain text, packed into fixed-length blocks; from a model, or from "
                        "scratch with [model] from_scratch = true (the config only, fresh weights).",
            key_fields=("max_length", "packing") + COMMON_KEYS,
        ),
        Stage(
            name="sft",
            title="Supervised fine-tuning",
            config_class="trl:SFTConfig",
            formats=(MESSAGES, PROMPT_COMPLETION, INSTRUCTION, TEXT),
            description="Next-token loss on demonstrations (chat messages, prompt/completion, instruction/output "
                        "or plain text).",
            key_fields=("max_length", "packing", "assistant_only_loss") + COMMON_KEYS,
        ),
        Stage(
            name="reward",
            title="Reward model (pairwise)",
            config_class="trl:RewardConfig",
            formats=(PAIRS, PAIRS_IMPLICIT),
            description="A sequence-classification model (one score) trained so chosen outscores rejected.",
            key_fields=("max_length", "center_rewards_coefficient") + COMMON_KEYS,
        ),
        Stage(
            name="dpo",
            title="DPO (direct preference optimisation)",
            config_class="trl:DPOConfig",
            formats=(PAIRS, PAIRS_IMPLICIT),
            description="Preference pairs, no reward model; beta scales the implicit KL to the reference.",
            key_fields=("beta", "loss_type", "max_length") + COMMON_KEYS,
        ),
        Stage(
            name="kto",
            title="KTO (Kahneman-Tversky optimisation)",
            config_class="trl:KTOConfig",
            formats=(LABELLED,),
            description="Unpaired completions labelled desirable / undesirable.",
            key_fields=("beta", "desirable_weight", "undesirable_weight", "max_length") + COMMON_KEYS,
        ),
        Stage(
            name="ppo",
            title="PPO (RLHF with a reward model)",
            config_class="trl.experimental.ppo:PPOConfig",
            formats=(PROMPT_ONLY,),
            description="Actor, frozen reference, reward model ([model] reward_model) and value model; "
                        "kl_coef controls the KL penalty.",
            needs_models=("reward_model",),
            key_fields=("kl_coef", "response_length", "num_ppo_epochs", "num_mini_batches", "total_episodes",
                        "temperature", "learning_rate", "per_device_train_batch_size"),
        ),
        Stage(
            name="distill",
            title="Distillation (on-policy, teacher logits)",
            config_class="trl:DistillationConfig",
            formats=(PROMPT_ONLY,),
            description="The student generates, the teacher's logits supervise it ([model] teacher).",
            needs_models=("teacher",),
            key_fields=("max_completion_length", "temperature") + COMMON_KEYS,
        ),
        Stage(
            name="distill-offline",
            title="Distillation (offline: teacher answers -> SFT)",
            config_class="trl:SFTConfig",
            formats=(PROMPT_ONLY,),
            description="The teacher ([model] teacher) answers every prompt; the student is fine-tuned on "
                        "those answers. The generated dataset is kept in the run directory.",
            needs_models=("teacher",),
            generates=True,
            key_fields=("max_length",) + COMMON_KEYS,
        ),
        Stage(
            name="best-of-k",
            title="Best-of-K data curation (rejection sampling)",
            config_class=None,
            formats=(PROMPT_ONLY,),
            description="Generate K completions per prompt, score them with reward functions or a reward "
                        "model, keep the best one above a threshold: a new SFT dataset (runs/<id>/dataset.jsonl).",
            uses_rewards=True,
            generates=True,
        ),
    )
}


def match_format(stage: Stage, columns: list[str] | set[str]) -> DataFormat | None:
    cols = set(columns)
    for fmt in stage.formats:
        if set(fmt.columns) <= cols:
            return fmt
    return None
