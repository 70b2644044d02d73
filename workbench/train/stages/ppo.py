"""PPO (trl 1.12's experimental PPOTrainer): actor, frozen reference, reward model and value model.

The value model starts from the reward model. The trainer is workbench.train.ppo_resume's ResumablePPOTrainer:
a stop request (StopRequested out of on_step_end; trl's loop ignores should_training_stop) saves checkpoint-N of
that update before the run ends, and ``train(resume_from_checkpoint=...)`` continues from it.

trl's PPO counts its updates from total_episodes and ignores max_steps; a recipe's ``train.max_steps`` > 0 is
turned into total_episodes = max_steps x (per-device batch x gradient accumulation x processes), so max_steps
means updates here too.
"""
from __future__ import annotations

import os

from workbench.core.stages import STAGES


def ppo_config(train_kwargs: dict, world_size: int | None = None):
    """PPOConfig from the workbench's defaults and the recipe's [train], with max_steps counted as updates."""
    from trl.experimental.ppo import PPOConfig

    args = PPOConfig(**{**STAGES["ppo"].defaults, **train_kwargs})
    if args.max_steps > 0:
        world = world_size or int(os.environ.get("WORLD_SIZE", "1"))
        per_update = args.per_device_train_batch_size * args.gradient_accumulation_steps * world  # episodes
        args.total_episodes = args.max_steps * per_update
    return args


def build_ppo(ctx):
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    from workbench.train.ppo_resume import ResumablePPOTrainer

    tok = ctx.tokenizer
    tok.padding_side = "left"
    args = ppo_config(ctx.train_kwargs)

    def to_ids(row):
        prompt = row["prompt"]
        msgs = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
        enc = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True, return_dict=True)
        return {"input_ids": enc["input_ids"]}

    ds = ctx.dataset.map(to_ids, remove_columns=ctx.dataset.column_names)
    mk = ctx.model_kwargs()
    rm_path = ctx.resolve("model.reward_model")
    policy = ctx.load_causal_lm()
    ref = AutoModelForCausalLM.from_pretrained(ctx.model_path, **mk)
    reward = AutoModelForSequenceClassification.from_pretrained(rm_path, num_labels=1, **mk)
    value = AutoModelForSequenceClassification.from_pretrained(rm_path, num_labels=1, **mk)
    for m in (reward, value):
        if m.config.pad_token_id is None:
            m.config.pad_token_id = tok.pad_token_id
    ctx.stop.raise_on_stop = True
    return ResumablePPOTrainer(args=args, processing_class=tok, model=policy, ref_model=ref, reward_model=reward,
                               value_model=value, train_dataset=ds, peft_config=ctx.peft_config,
                               callbacks=ctx.callbacks)
