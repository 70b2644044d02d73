"""The stage catalogue: every training stage is ONE declaration here, next to its builder's name.

A ``Stage`` says everything the light side (validation, templates, the TUI, the CLI) knows about a stage: which trl
config class it fills, what data it takes, which extra models it needs, which charts the monitor shows first and
which metric keys are its headline, and the facts validation keys on (prompt groups, vLLM, trl's own eval, chat
templating, adapters). The training child resolves ``builder`` ("module:function") lazily
(workbench.train.stages.BUILDERS). Data only: no torch/transformers/trl import here.

Adding a trl trainer: one ``Stage`` below, one builder (workbench/train/stages/), one recipe
(recipes/<stage>-tiny.toml). tests/core/test_stage_catalogue.py checks the three line up, and
tests/e2e/test_stages.py checks every declared chart and headline key against a real run's metrics.jsonl.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DataFormat:
    name: str
    columns: tuple[str, ...]  # all required
    note: str = ""


@dataclass(frozen=True)
class Range:
    """A number's allowed range (validation: rules.RANGES, Stage.ranges)."""

    low: float | None = None
    low_open: bool = False  # True: value must be > low
    high: float | None = None
    high_open: bool = False


@dataclass(frozen=True)
class Chart:
    """One of the stage's own monitor charts (tui/chartplan.py lays them out first, in this order)."""

    title: str
    keys: tuple[str, ...]  # the metric keys it shows; "a|b": the first of a, b that the run logs
    # The keys are logged only when the run's beta > 0 (trl's default: Stage.trl_defaults["beta"]); the monitor
    # says so on the empty chart, and the e2e stage test allows them missing then.
    needs_beta: bool = False


@dataclass(frozen=True)
class Stage:
    name: str
    title: str
    config_class: str | None  # "module:Class", imported only in a child process; None: no trl trainer
    formats: tuple[DataFormat, ...]  # the dataset must match one of these
    description: str
    # "module:function" building the trainer (anything with train()) from a workbench.train.context.Context;
    # imported only in the training child.
    builder: str = ""
    uses_rewards: bool = False
    # Extra model references the stage needs: [model] keys, e.g. ("teacher",) or ("reward_model",).
    needs_models: tuple[str, ...] = ()
    # Extra model references it may take ([model] keys; e.g. best-of-k scores with a reward model instead of or
    # with its reward functions).
    optional_models: tuple[str, ...] = ()
    # The [generate] section applies; these are its keys the editor shows.
    generates: bool = False
    generate_keys: tuple[str, ...] = ()
    # The knobs the TUI shows on top of the full trl field list.
    key_fields: tuple[str, ...] = ()
    # [train] values the stage's builder sets unless the recipe does (validation checks them as set).
    defaults: dict = field(default_factory=dict)
    # trl's own defaults the light side needs without importing trl (the KL chart's beta, the group size).
    trl_defaults: dict = field(default_factory=dict)
    # Stage-specific ranges of [train] numbers, over rules.RANGES.
    ranges: dict = field(default_factory=dict)
    # The monitor's first charts (then the eval chart and one per other logged key; see tui/chartplan.py).
    charts: tuple[Chart, ...] = ()
    # The metric keys the summary lines show for a run of this stage (`workbench tail`, the monitor's status
    # line), in this order; all of them logged by the stage's trainer.
    headline: tuple[str, ...] = ()
    # -- facts validation keys on --
    # Samples num_generations completions per prompt and compares them within the group (GRPO, RLOO): the
    # generation batch holds whole groups.
    groups: bool = False
    vllm: bool = False  # trl's vLLM generation ([vllm], use_vllm) applies
    trl_eval: bool = False  # the trainer evaluates a loss on held-out rows of its own format (eval_dataset)
    scorer: bool = False  # trains a model that scores, not one that generates: [eval] feeds only trl's eval
    always_chat: bool = False  # the builder applies the chat template whatever the data
    continues_adapter: bool = False  # can go on training a run's unmerged (prompt / prefix) adapter
    trains_model: bool = True  # False: trains nothing ([peft] does not apply)


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

# The monitor's first charts of the stages that share them.
GROUP_CHARTS = (Chart("reward", ("reward",)), Chart("loss", ("loss",)),
                Chart("KL", ("kl|objective/kl",), needs_beta=True))
TEXT_CHARTS = (Chart("loss", ("loss",)), Chart("token accuracy", ("mean_token_accuracy",)),
               Chart("learning rate", ("learning_rate",)))
GROUP_FACTS = dict(groups=True, vllm=True, continues_adapter=True, headline=("reward", "loss", "kl"))

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
            builder="workbench.train.stages.grpo:build_grpo",
            uses_rewards=True,
            key_fields=("num_generations", "temperature", "beta", "max_completion_length") + COMMON_KEYS,
            trl_defaults={"beta": 0.0, "num_generations": 8},
            charts=GROUP_CHARTS,
            **GROUP_FACTS,
        ),
        Stage(
            name="rloo",
            title="RLOO (REINFORCE leave-one-out)",
            config_class="trl:RLOOConfig",
            formats=(PROMPT_ONLY,),
            description="Like GRPO, with a leave-one-out baseline over the num_generations samples of a prompt.",
            builder="workbench.train.stages.grpo:build_rloo",
            uses_rewards=True,
            key_fields=("num_generations", "temperature", "beta", "max_completion_length") + COMMON_KEYS,
            trl_defaults={"beta": 0.05, "num_generations": 2},
            charts=GROUP_CHARTS,
            **GROUP_FACTS,
        ),
        Stage(
            name="pretrain",
            title="Pre-training (next-token prediction)",
            config_class="trl:SFTConfig",
            formats=(TEXT,),
            description="Causal-LM loss on plain text, packed into fixed-length blocks; from a model, or from "
                        "scratch with [model] from_scratch = true (the config only, fresh weights).",
            builder="workbench.train.stages.text:build_pretrain",
            key_fields=("max_length", "packing") + COMMON_KEYS,
            defaults={"packing": True, "dataset_text_field": "text"},
            charts=TEXT_CHARTS,
            headline=("loss",),
            trl_eval=True,
            continues_adapter=True,
        ),
        Stage(
            name="sft",
            title="Supervised fine-tuning",
            config_class="trl:SFTConfig",
            formats=(MESSAGES, PROMPT_COMPLETION, INSTRUCTION, TEXT),
            description="Next-token loss on demonstrations (chat messages, prompt/completion, instruction/output "
                        "or plain text).",
            builder="workbench.train.stages.text:build_sft",
            key_fields=("max_length", "packing", "assistant_only_loss") + COMMON_KEYS,
            charts=TEXT_CHARTS,
            headline=("loss",),
            trl_eval=True,
            continues_adapter=True,
        ),
        Stage(
            name="reward",
            title="Reward model (pairwise)",
            config_class="trl:RewardConfig",
            formats=(PAIRS, PAIRS_IMPLICIT),
            description="A sequence-classification model (one score) trained so chosen outscores rejected.",
            builder="workbench.train.stages.preference:build_reward",
            key_fields=("max_length", "center_rewards_coefficient") + COMMON_KEYS,
            charts=(Chart("loss", ("loss",)), Chart("accuracy", ("accuracy",)), Chart("margin", ("margin",))),
            headline=("loss", "accuracy"),
            trl_eval=True,
            scorer=True,
            always_chat=True,  # pair lengths are counted on the templated text
        ),
        Stage(
            name="dpo",
            title="DPO (direct preference optimisation)",
            config_class="trl:DPOConfig",
            formats=(PAIRS, PAIRS_IMPLICIT),
            description="Preference pairs, no reward model; beta scales the implicit KL to the reference.",
            builder="workbench.train.stages.preference:build_dpo",
            key_fields=("beta", "loss_type", "max_length") + COMMON_KEYS,
            charts=(Chart("loss", ("loss",)), Chart("preference accuracy", ("rewards/accuracies",)),
                    Chart("margin", ("rewards/margins",))),
            headline=("loss", "rewards/accuracies"),
            trl_eval=True,
        ),
        Stage(
            name="kto",
            title="KTO (Kahneman-Tversky optimisation)",
            config_class="trl:KTOConfig",
            formats=(LABELLED,),
            description="Unpaired completions labelled desirable / undesirable.",
            builder="workbench.train.stages.preference:build_kto",
            key_fields=("beta", "desirable_weight", "undesirable_weight", "max_length") + COMMON_KEYS,
            charts=(Chart("loss", ("loss",)), Chart("KL", ("kl",)), Chart("learning rate", ("learning_rate",))),
            headline=("loss", "kl"),
            trl_eval=True,
        ),
        Stage(
            name="ppo",
            title="PPO (RLHF with a reward model)",
            config_class="trl.experimental.ppo:PPOConfig",
            formats=(PROMPT_ONLY,),
            description="Actor, frozen reference, reward model ([model] reward_model) and value model; "
                        "kl_coef controls the KL penalty.",
            builder="workbench.train.stages.ppo:build_ppo",
            needs_models=("reward_model",),
            key_fields=("kl_coef", "response_length", "num_ppo_epochs", "num_mini_batches", "total_episodes",
                        "temperature", "learning_rate", "per_device_train_batch_size"),
            defaults={"stop_token": "eos", "num_sample_generations": 0, "response_length": 32,
                      "missing_eos_penalty": 1.0},
            charts=(Chart("RLHF reward", ("objective/rlhf_reward", "objective/scores")),
                    Chart("policy / value loss", ("loss/policy_avg", "loss/value_avg")),
                    Chart("KL", ("objective/kl",))),
            headline=("objective/kl",),
            always_chat=True,  # generation
        ),
        Stage(
            name="distill",
            title="Distillation (on-policy, teacher logits)",
            config_class="trl:DistillationConfig",
            formats=(PROMPT_ONLY,),
            description="The student generates, the teacher's logits supervise it ([model] teacher).",
            builder="workbench.train.stages.distill:build_distill",
            needs_models=("teacher",),
            key_fields=("max_completion_length", "temperature") + COMMON_KEYS,
            ranges={"beta": Range(0, False, 1)},  # DistillationConfig: "beta must be in [0.0, 1.0]"
            charts=(Chart("loss", ("loss",)), Chart("grad norm", ("grad_norm",)),
                    Chart("learning rate", ("learning_rate",))),
            headline=("loss",),
        ),
        Stage(
            name="distill-offline",
            title="Distillation (offline: teacher answers -> SFT)",
            config_class="trl:SFTConfig",
            formats=(PROMPT_ONLY,),
            description="The teacher ([model] teacher) answers every prompt; the student is fine-tuned on "
                        "those answers. The generated dataset is kept in the run directory.",
            builder="workbench.train.stages.distill:build_distill_offline",
            needs_models=("teacher",),
            generates=True,
            generate_keys=("max_new_tokens", "temperature"),
            key_fields=("max_length",) + COMMON_KEYS,
            charts=TEXT_CHARTS,
            headline=("loss",),
            always_chat=True,  # the teacher generates
            continues_adapter=True,
        ),
        Stage(
            name="best-of-k",
            title="Best-of-K data curation (rejection sampling)",
            config_class=None,
            formats=(PROMPT_ONLY,),
            description="Generate K completions per prompt, score them with reward functions or a reward "
                        "model, keep the best one above a threshold: a new SFT dataset (runs/<id>/dataset.jsonl).",
            builder="workbench.train.stages.curate:build_best_of_k",
            uses_rewards=True,
            optional_models=("reward_model",),  # scores instead of (or with) the reward functions
            generates=True,
            generate_keys=("k", "max_new_tokens", "temperature", "threshold"),
            charts=(Chart("reward", ("reward",)), Chart("best of K", ("best_reward",)),
                    Chart("kept fraction", ("kept_fraction",))),
            headline=("reward",),
            always_chat=True,  # generation
            trains_model=False,
        ),
    )
}


def names(fact: str) -> tuple[str, ...]:
    """The stages whose declaration has ``fact`` true, in catalogue order (e.g. names("groups"))."""
    return tuple(n for n, s in STAGES.items() if getattr(s, fact))


def headline_keys(stage: str | None, fallback: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The stage's declared headline metric keys; ``fallback`` for a stage the catalogue does not know."""
    known = STAGES.get(stage or "")
    return known.headline if known is not None and known.headline else fallback


def all_headline_keys() -> tuple[str, ...]:
    """Every stage's headline keys, each once, in catalogue order."""
    return tuple(dict.fromkeys(k for s in STAGES.values() for k in s.headline))


def match_format(stage: Stage, columns: list[str] | set[str]) -> DataFormat | None:
    cols = set(columns)
    for fmt in stage.formats:
        if set(fmt.columns) <= cols:
            return fmt
    return None
