"""The eval's child side: one answer checker for rewards and evals (math-verify), prompts and answers out of every
data shape, records from generations, and the [eval] section's set-up and periodic callback on a tiny model."""
from __future__ import annotations

import doctest
import json
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

from workbench.core import evals  # noqa: E402
from workbench.train import answers, evaluate, rewards  # noqa: E402


@pytest.mark.parametrize("module", [answers, rewards, evals])
def test_doctests(module):
    result = doctest.testmod(module)
    assert result.attempted and not result.failed


@pytest.mark.parametrize("given, expected, right", [
    ("4", "4", True), ("4.0", "4", True), ("1,000", "1000", True), ("5", "4", False),
    ("0.5", "1/2", True), ("\\frac{1}{2}", "0.5", True), ("1/3", "0.5", False), ("$x = 3$", "3", True),
    ("yes", "yes", True), ("no", "yes", False), ("", "4", False), ("2+2", "4", True),
])
def test_training_reward_and_eval_use_the_same_checker(given, expected, right):
    text = f"<reasoning>r</reasoning><answer>{given}</answer>"
    assert answers.is_correct(answers.extract_answer(text), expected) is right
    assert rewards.correctness([text], answer=[expected]) == [2.0 if right else 0.0]
    assert answers.score(text, expected) == {"answer": given or "", "correct": right, "formatted": True}


def test_items_from_every_data_shape():
    system = {"role": "system", "content": "S"}
    user = {"role": "user", "content": "What is 2 + 3?"}
    good = [{"role": "assistant", "content": "<reasoning>r</reasoning><answer>5</answer>"}]
    rows = [
        {"prompt": "What is 1 + 1?", "answer": 2},
        {"messages": [system, user, *good]},
        {"prompt": [system, user], "completion": good, "label": True},
        {"prompt": [user], "completion": [{"role": "assistant", "content": "<answer>7</answer>"}], "label": False},
        {"prompt": [user], "chosen": good, "rejected": good},
        {"text": "no prompt here"},
        {"messages": [user]},  # no assistant turn: no reference, but still nothing to split off
    ]
    items = evaluate.eval_items(rows)
    assert items == [
        {"prompt": "What is 1 + 1?", "expected": "2"},
        {"prompt": [system, user], "expected": "5"},
        {"prompt": [system, user], "expected": "5"},
        {"prompt": [user], "expected": None},  # an undesirable reply is no reference
        {"prompt": [user], "expected": "5"},
    ]
    assert len(evaluate.eval_items(rows, max_prompts=2)) == 2


class FakeLM:
    """Generates fixed token sequences; 'ended' ones stop with the eos token."""

    device = torch.device("cpu")
    training = True

    def __init__(self, tokenizer, texts):
        self.tok, self.texts = tokenizer, texts
        self.generation_config = SimpleNamespace(eos_token_id=tokenizer.eos_token_id)

    def eval(self):
        self.training = False
        return self

    def generate(self, input_ids, attention_mask, num_return_sequences, max_new_tokens, **kw):
        rows = []
        for _ in range(input_ids.shape[0]):
            for text in self.texts[:num_return_sequences]:
                ids = self.tok(text, add_special_tokens=False)["input_ids"][:max_new_tokens]
                if text.endswith("</answer>") and len(ids) < max_new_tokens:
                    ids.append(self.tok.eos_token_id)
                rows.append(ids + [self.tok.pad_token_id] * (max_new_tokens - len(ids)))
        return torch.cat([input_ids.repeat_interleave(num_return_sequences, 0), torch.tensor(rows)], dim=1)


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from workbench.train.builtin import ensure_builtin

    return AutoTokenizer.from_pretrained(ensure_builtin("tiny-lm"))


def test_records_score_lengths_and_truncation(tokenizer):
    texts = ["<reasoning>2 plus 2</reasoning><answer>4</answer>", "<answer>5</answer>",
             "<reasoning>" + "very long thinking " * 20]
    lm = FakeLM(tokenizer, texts)
    items = [{"prompt": "What is 2 + 2?", "expected": "4"}, {"prompt": "What is 1 + 3?", "expected": "4"}]
    tokenizer.padding_side = "right"
    records = evaluate.run(lm, tokenizer, items, k=3, temperature=0.7, max_new_tokens=24, batch_size=1)
    assert tokenizer.padding_side == "right", "the trainer's padding side is put back"
    assert [(r["prompt_index"], r["sample"]) for r in records] == [(i, j) for i in range(2) for j in range(3)]
    first, second, third = records[:3]
    assert (first["answer"], first["correct"], first["formatted"], first["truncated"]) == ("4", True, True, False)
    assert first["tokens"] == len(tokenizer(texts[0], add_special_tokens=False)["input_ids"]) + 1, "eos counted"
    assert (second["correct"], second["formatted"]) == (False, False)
    assert third["truncated"] and third["tokens"] == 24 and third["answer"] is None
    s = evals.summarize(records, 3)
    assert s["accuracy"] == pytest.approx(1 / 3) and s["pass@k"] == 1.0 and s["truncated_rate"] == pytest.approx(1 / 3)
    rows = evaluate.sample_rows(records, step=7)
    assert rows[0] == {"step": 7, "group": 0, "index": 0, "prompt": "What is 2 + 2?", "completion": texts[0],
                       "rewards": {"correctness": 2.0, "format": 1.0}, "reward": 3.0, "advantage": None,
                       "eval": True, "answer": "4", "expected": "4"}
    assert json.dumps(rows)


def test_eval_section_holds_out_rows_and_wires_trls_eval_dataset(stage_ctx):
    from workbench.train import eval_in_training

    grpo = stage_ctx("grpo-tiny.toml", "eval.max_prompts=8")
    eval_in_training.setup(grpo)
    assert len(grpo.dataset) == 152 and grpo.eval_dataset is None, "grpo: held out, no trl eval dataset"
    cb = grpo.callbacks[-1]
    assert isinstance(cb, eval_in_training.PeriodicEval) and len(cb.items) == 8
    assert isinstance(cb.items[0]["prompt"], list), "the recipe's system prompt is added to held-out prompts"

    sft = stage_ctx("sft-tiny.toml", 'eval.data="../assets/data/format-sft.jsonl"', "eval.max_prompts=4")
    eval_in_training.setup(sft)
    assert len(sft.dataset) == 160 and len(sft.eval_dataset) == 160, "a file in the sft format: trl's eval too"
    assert sft.callbacks[-1].items[0]["expected"] == "5"

    prompts = stage_ctx("sft-tiny.toml", 'eval.data="../assets/data/arith-heldout.jsonl"')
    eval_in_training.setup(prompts)
    assert prompts.eval_dataset is None and len(prompts.callbacks[-1].items) == 20

    text = stage_ctx("pretrain-tiny.toml", "eval.max_prompts=8", 'train.eval_strategy="steps"')
    n = len(text.dataset)
    eval_in_training.setup(text)
    assert len(text.eval_dataset) == 8 and len(text.dataset) == n - 8
    assert not any(isinstance(c, eval_in_training.PeriodicEval) for c in text.callbacks), "text: no prompts"


def test_periodic_eval_runs_at_start_every_n_steps_and_end(stage_ctx):
    from transformers import AutoModelForCausalLM

    from workbench.train import eval_in_training

    ctx = stage_ctx("sft-tiny.toml", 'eval.data="../assets/data/arith-heldout.jsonl"', "eval.max_prompts=2",
                    "eval.k=2", "eval.max_new_tokens=4", "eval.every_steps=2")
    eval_in_training.setup(ctx)
    cb = ctx.callbacks[-1]
    model = AutoModelForCausalLM.from_pretrained(ctx.model_path).train()
    state = SimpleNamespace(global_step=0)
    cb.on_train_begin(None, state, None, model=model)
    for step in (1, 2, 3, 4):
        state.global_step = step
        cb.on_step_end(None, state, None, model=model)
    cb.on_train_end(None, state, None, model=model)  # step 4 was just evaluated: not twice
    assert model.training, "back in train mode"
    ctx.logger.out.f.flush()
    rows = [json.loads(x) for x in ctx.rd.metrics_path.read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 2, 4]
    assert {"eval/accuracy", "eval/format_rate", "eval/pass@k", "eval/maj@k", "eval/mean_length",
            "eval/truncated_rate", "eval/prompts", "eval/k"} <= set(rows[0])
    assert rows[0]["eval/prompts"] == 2 and rows[0]["eval/k"] == 2
    samples = [json.loads(x) for x in ctx.rd.samples_path.read_text().splitlines()]
    assert len(samples) == 3 * 2 * 2 and all(s["eval"] for s in samples)
    assert set(samples[0]["rewards"]) == {"correctness", "format"}

    ctx.rd.stop_request_path.write_text("1")  # a stop request: no eval at the end (the stop clock is running)
    state.global_step = 5
    cb.on_train_end(None, state, None, model=model)
    assert len(ctx.rd.metrics_path.read_text().splitlines()) == 3
