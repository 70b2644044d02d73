"""Best-of-K data curation (rejection sampling): K completions per prompt, scored by the reward functions
(weighted) or a reward model; a prompt's best completion is kept if it scores at least the threshold.

Output: runs/<id>/dataset.jsonl in prompt/completion chat form (usable by the sft stage), every scored
completion in samples.jsonl, and metrics per batch (mean/best reward, kept fraction).
"""
from __future__ import annotations

import json
import time


class Curation:
    """Trainer-shaped (``train()``) so the entry point runs it like any stage; it saves no model."""

    model = None

    def __init__(self, ctx):
        self.ctx = ctx

    def train(self):
        from transformers import AutoModelForSequenceClassification

        from workbench.train import rewards
        from workbench.train.callbacks import JsonlWriter
        from workbench.train.generate import sample, score_with_model, training_device

        ctx, g = self.ctx, self.ctx.recipe.section("generate")
        k, threshold, bs = g.get("k", 4), g.get("threshold", 0.0), g.get("batch_size", 16)
        device = training_device(ctx.train_kwargs)
        model = ctx.load_causal_lm().to(device)
        funcs = rewards.load_all(ctx.recipe.get("rewards.funcs", []))
        weights = ctx.recipe.get("rewards.weights") or [1.0] * len(funcs)
        rm = None
        if ctx.recipe.get("model.reward_model"):
            rm = AutoModelForSequenceClassification.from_pretrained(ctx.resolve("model.reward_model"), num_labels=1,
                                                                    **ctx.model_kwargs()).to(device)
        ds = ctx.dataset
        extra = [c for c in ds.column_names if c != "prompt"]
        metrics, samples = ctx.logger.out, JsonlWriter(ctx.rd.samples_path, ctx.is_main)
        batches = (len(ds) + bs - 1) // bs
        metrics.write({"event": "train_begin", "step": 0, "max_steps": batches, "time": time.time()})
        kept, n_seen = [], 0
        for step in range(1, batches + 1):
            if ctx.stop.requested():
                break
            rows = ds.select(range((step - 1) * bs, min(step * bs, len(ds))))
            prompts = list(rows["prompt"])
            outs = sample(model, ctx.tokenizer, prompts, k=k, max_new_tokens=g.get("max_new_tokens", 48),
                          temperature=g.get("temperature", 0.9), batch_size=bs)
            flat_p = [p for p in prompts for _ in range(k)]
            flat_c = [c for cs in outs for c in cs]
            per_func = {}
            for f in funcs:
                cols = {c: [v for v in rows[c] for _ in range(k)] for c in extra}
                per_func[f.__name__] = f(prompts=flat_p, completions=flat_c, **cols)
            if rm is not None:
                per_func["reward_model"] = score_with_model(rm, ctx.tokenizer, flat_p, flat_c)
            w = list(weights) + ([1.0] if rm is not None else [])
            totals = [sum(wi * per_func[n][i] for wi, n in zip(w, per_func)) for i in range(len(flat_c))]
            best_scores = []
            for j, p in enumerate(prompts):
                group = list(range(j * k, (j + 1) * k))
                best = max(group, key=lambda i: totals[i])
                best_scores.append(totals[best])
                if totals[best] >= threshold:
                    kept.append({"prompt": p if isinstance(p, list) else [{"role": "user", "content": p}],
                                 "completion": [{"role": "assistant", "content": flat_c[best]}],
                                 "reward": totals[best]})
            samples.write_many([{"step": step, "group": (n_seen + i // k), "index": i, "prompt": json.dumps(
                flat_p[i]) if isinstance(flat_p[i], list) else flat_p[i], "completion": flat_c[i],
                "rewards": {n: per_func[n][i] for n in per_func}, "reward": totals[i], "advantage": None}
                for i in range(len(flat_c))])
            n_seen += len(prompts)
            metrics.write({"step": step, "time": time.time(), "reward": sum(totals) / len(totals),
                           "best_reward": sum(best_scores) / len(best_scores), "kept_fraction": len(kept) / n_seen,
                           **{f"rewards/{n}/mean": sum(v) / len(v) for n, v in per_func.items()}})
            ctx.on_step(step)
        if ctx.is_main:
            with open(ctx.rd.path / "dataset.jsonl", "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r) + "\n" for r in kept)
        ctx.stop.stopped = ctx.stop.requested()
        ctx.note(f"kept {len(kept)} of {n_seen} prompts: {ctx.rd.path / 'dataset.jsonl'}")
        metrics.write({"event": "train_end", "step": step, "time": time.time(), "kept": len(kept)})


def build_best_of_k(ctx):
    return Curation(ctx)
