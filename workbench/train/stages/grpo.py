"""GRPO: trl's GRPOTrainer with the recipe's reward functions; every completion goes to samples.jsonl."""
from __future__ import annotations

from workbench.train import rewards
from workbench.train.callbacks import SampleLogger


def build(ctx):
    from trl import GRPOConfig, GRPOTrainer

    kwargs = dict(ctx.train_kwargs)
    weights = ctx.recipe.get("rewards.weights") or None
    if weights and "reward_weights" not in kwargs:
        kwargs["reward_weights"] = weights
    args = GRPOConfig(**kwargs)
    samples = SampleLogger(ctx.rd, ctx.is_main, args.reward_weights, args.num_generations)
    trainer = GRPOTrainer(
        model=ctx.load_causal_lm(),
        reward_funcs=rewards.load_all(ctx.recipe.get("rewards.funcs", [])),
        args=args,
        train_dataset=ctx.dataset,
        processing_class=ctx.tokenizer,
        peft_config=ctx.peft_config,
        callbacks=[*ctx.callbacks, samples],
    )
    samples.trainer = trainer
    return trainer
