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
    config_class: str  # "module:Class", imported only in a child process
    formats: tuple[DataFormat, ...]  # the dataset must match one of these
    description: str
    uses_rewards: bool = False
    # The knobs the TUI shows on top of the full trl field list.
    key_fields: tuple[str, ...] = ()
    # Values the workbench sets unless the recipe does (CPU-friendly, no external loggers).
    defaults: dict = field(default_factory=dict)


PROMPT_ONLY = DataFormat("prompts", ("prompt",), "prompt (text or chat messages), plus any columns rewards use")
MESSAGES = DataFormat("messages", ("messages",), "multi-turn chat, loss on every assistant turn")
PROMPT_COMPLETION = DataFormat("prompt/completion", ("prompt", "completion"))
INSTRUCTION = DataFormat("instruction", ("instruction", "output"), "Alpaca form; 'input' optional")
TEXT = DataFormat("text", ("text",), "plain text (causal LM)")

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
            name="sft",
            title="Supervised fine-tuning",
            config_class="trl:SFTConfig",
            formats=(MESSAGES, PROMPT_COMPLETION, INSTRUCTION, TEXT),
            description="Next-token loss on demonstrations (chat messages, prompt/completion, instruction/output "
                        "or plain text).",
            key_fields=("max_length", "packing", "assistant_only_loss") + COMMON_KEYS,
        ),
    )
}


def stage_names() -> list[str]:
    return list(STAGES)


def match_format(stage: Stage, columns: list[str] | set[str]) -> DataFormat | None:
    cols = set(columns)
    for fmt in stage.formats:
        if set(fmt.columns) <= cols:
            return fmt
    return None
