"""SFT: trl's SFTTrainer on messages, prompt/completion, instruction (converted to messages) or plain text."""
from __future__ import annotations


def build(ctx):
    from trl import SFTConfig, SFTTrainer

    return SFTTrainer(
        model=ctx.load_causal_lm(),
        args=SFTConfig(**ctx.train_kwargs),
        train_dataset=ctx.dataset,
        processing_class=ctx.tokenizer,
        peft_config=ctx.peft_config,
        callbacks=ctx.callbacks,
    )
