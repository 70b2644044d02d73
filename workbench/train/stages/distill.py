"""Distillation: on-policy (trl's DistillationTrainer with the teacher's logits) and offline (the teacher
answers every prompt, the answers become an SFT dataset kept in the run directory, the student is fine-tuned)."""
from __future__ import annotations

import json


def build_distill(ctx):
    from transformers import AutoModelForCausalLM
    from trl import DistillationConfig, DistillationTrainer

    teacher = AutoModelForCausalLM.from_pretrained(ctx.resolve("model.teacher"), **ctx.model_kwargs())
    return DistillationTrainer(model=ctx.load_causal_lm(), teacher_model=teacher,
                               args=DistillationConfig(**ctx.train_kwargs), train_dataset=ctx.dataset,
                               processing_class=ctx.tokenizer, peft_config=ctx.peft_config, callbacks=ctx.callbacks)


def build_distill_offline(ctx):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from workbench.train.generate import sample, training_device

    g = ctx.recipe.section("generate")
    teacher = AutoModelForCausalLM.from_pretrained(ctx.resolve("model.teacher"), **ctx.model_kwargs())
    teacher.to(training_device(ctx.train_kwargs))
    prompts = list(ctx.dataset["prompt"])
    answers = sample(teacher, ctx.tokenizer, prompts, k=1, max_new_tokens=g.get("max_new_tokens", 48),
                     temperature=g.get("temperature", 0.0), batch_size=g.get("batch_size", 16))
    rows = [{"prompt": p if isinstance(p, list) else [{"role": "user", "content": p}],
             "completion": [{"role": "assistant", "content": a[0]}]} for p, a in zip(prompts, answers)]
    if ctx.is_main:
        with open(ctx.rd.path / "dataset.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
        ctx.note(f"teacher answered {len(rows)} prompts: {ctx.rd.path / 'dataset.jsonl'}")
    del teacher
    ctx.tokenizer.padding_side = "right"
    return SFTTrainer(model=ctx.load_causal_lm(), args=SFTConfig(**ctx.train_kwargs),
                      train_dataset=Dataset.from_list(rows), processing_class=ctx.tokenizer,
                      peft_config=ctx.peft_config, callbacks=ctx.callbacks)
