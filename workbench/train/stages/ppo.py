"""PPO (trl 1.12's experimental PPOTrainer): actor, frozen reference, reward model and value model.

The value model starts from the reward model. trl's PPO loop ignores should_training_stop, so a stop request
raises StopRequested after the current update (no checkpoint for that partial step).
"""
from __future__ import annotations


def build_ppo(ctx):
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
    from trl.experimental.ppo import PPOConfig, PPOTrainer

    tok = ctx.tokenizer
    tok.padding_side = "left"
    kwargs = {"stop_token": "eos", "num_sample_generations": 0, "response_length": 32,
              "missing_eos_penalty": 1.0, **ctx.train_kwargs}
    args = PPOConfig(**kwargs)

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
    return PPOTrainer(args=args, processing_class=tok, model=policy, ref_model=ref, reward_model=reward,
                      value_model=value, train_dataset=ds, peft_config=ctx.peft_config, callbacks=ctx.callbacks)
