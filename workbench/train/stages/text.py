"""Next-token stages: SFT (messages, prompt/completion, instruction, text) and pre-training (packed text)."""
from __future__ import annotations

from workbench.core.stages import STAGES


def build_sft(ctx):
    from trl import SFTConfig, SFTTrainer

    return SFTTrainer(model=ctx.load_causal_lm(), args=SFTConfig(**ctx.train_kwargs), train_dataset=ctx.dataset,
                      eval_dataset=ctx.eval_dataset, processing_class=ctx.tokenizer, peft_config=ctx.peft_config,
                      callbacks=ctx.callbacks)


def build_pretrain(ctx):
    from trl import SFTConfig, SFTTrainer

    kwargs = {**STAGES["pretrain"].defaults, **ctx.train_kwargs}  # packed plain text
    model = ctx.load_causal_lm(from_scratch=bool(ctx.recipe.get("model.from_scratch", False)))
    return SFTTrainer(model=model, args=SFTConfig(**kwargs), train_dataset=ctx.dataset, eval_dataset=ctx.eval_dataset,
                      processing_class=ctx.tokenizer, peft_config=ctx.peft_config, callbacks=ctx.callbacks)
