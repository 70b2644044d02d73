"""Online RL with reward functions: GRPO and RLOO; every completion goes to samples.jsonl."""
from __future__ import annotations

from workbench.train import rewards
from workbench.train.callbacks import SampleLogger


def _build(ctx, config_cls, trainer_cls):
    kwargs = dict(ctx.train_kwargs)
    weights = ctx.recipe.get("rewards.weights") or None
    if weights and "reward_weights" not in kwargs:
        kwargs["reward_weights"] = weights
    args = config_cls(**kwargs)
    samples = SampleLogger(ctx.rd, ctx.is_main, args.reward_weights, args.num_generations)
    trainer = trainer_cls(
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


def build_grpo(ctx):
    from trl import GRPOConfig, GRPOTrainer

    return _build(ctx, GRPOConfig, GRPOTrainer)


def build_rloo(ctx):
    from trl import RLOOConfig, RLOOTrainer

    return _build(ctx, RLOOConfig, RLOOTrainer)
