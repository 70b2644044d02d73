"""Preference stages: reward model (pairwise), DPO and KTO, on trl's trainers."""
from __future__ import annotations


def build_reward(ctx):
    from transformers import AutoModelForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    from workbench.train.adapters import SEQ_CLS, peft_config

    args = RewardConfig(**ctx.train_kwargs)
    model = AutoModelForSequenceClassification.from_pretrained(ctx.model_path, num_labels=1,
                                                               **ctx.model_kwargs(trained=True))
    if model.config.pad_token_id is None:
        model.config.pad_token_id = ctx.tokenizer.pad_token_id
    report_long_pairs(ctx, args.max_length)
    return RewardTrainer(model=model, args=args, train_dataset=ctx.dataset, eval_dataset=ctx.eval_dataset,
                         processing_class=ctx.tokenizer, peft_config=peft_config(ctx.recipe, SEQ_CLS),
                         callbacks=ctx.callbacks)


def report_long_pairs(ctx, max_length: int | None) -> None:
    """RewardTrainer silently drops pairs longer than max_length (FINDINGS.md): say how many, fail if all."""
    if not max_length:
        return
    tok = ctx.tokenizer

    def length(prompt, answer) -> int:
        msgs = (prompt if isinstance(prompt, list) else ([{"role": "user", "content": prompt}] if prompt else []))
        msgs = list(msgs) + (answer if isinstance(answer, list) else [{"role": "assistant", "content": answer}])
        return len(tok.apply_chat_template(msgs, tokenize=True, return_dict=True)["input_ids"])

    ds = ctx.dataset
    too_long = sum(
        1 for row in ds
        if max(length(row.get("prompt", ""), row["chosen"]), length(row.get("prompt", ""), row["rejected"]))
        > max_length
    )
    if too_long == len(ds):
        raise ValueError(f"every one of the {len(ds)} pairs is longer than max_length={max_length} tokens and "
                         "would be dropped; raise train.max_length")
    if too_long:
        ctx.note(f"{too_long} of {len(ds)} pairs are longer than max_length={max_length} tokens and are "
                 "dropped by trl's RewardTrainer; raise train.max_length to keep them")


def build_dpo(ctx):
    from trl import DPOConfig, DPOTrainer

    return DPOTrainer(model=ctx.load_causal_lm(), args=DPOConfig(**ctx.train_kwargs), train_dataset=ctx.dataset,
                      eval_dataset=ctx.eval_dataset, processing_class=ctx.tokenizer, peft_config=ctx.peft_config,
                      callbacks=ctx.callbacks)


def build_kto(ctx):
    from trl import KTOConfig, KTOTrainer

    return KTOTrainer(model=ctx.load_causal_lm(), args=KTOConfig(**ctx.train_kwargs), train_dataset=ctx.dataset,
                      eval_dataset=ctx.eval_dataset, processing_class=ctx.tokenizer, peft_config=ctx.peft_config,
                      callbacks=ctx.callbacks)
