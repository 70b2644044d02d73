"""Built-in tiny models, built offline and deterministically on first use into the workbench cache.

  builtin:tiny-lm       Qwen2 causal LM (hidden 64, 2 layers), ChatML template with generation markers
  builtin:tiny-teacher  the same family, hidden 128 (for distillation)
  builtin:tiny-rm       Qwen2ForSequenceClassification, 1 label ("score")
  builtin:tiny-chat     tiny-lm taught the reasoning format (workbench/train/tiny_chat.py), built from tiny-lm

All three share one byte-level BPE tokenizer trained here on synthetic text. PITFALL (FINDINGS.md): for
model_type qwen2, transformers 5's AutoTokenizer swaps in Qwen2Tokenizer, which rebuilds the normalizer and
pre-tokenizer; so the tokenizer is trained with Qwen2's exact pipeline (NFC + Split(PRETOKENIZE_REGEX) +
ByteLevel(use_regex=False)) and the round trip through AutoTokenizer is asserted after saving.
"""
from __future__ import annotations

import fcntl
import os
import random
import shutil
from pathlib import Path

from workbench.core.models import BUILTIN_MODELS, BUILTIN_SPECS, BUILTIN_VOCAB, TRAINED_BUILTINS, builtin_dir

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]
# ChatML; {% generation %} markers make SFT's assistant_only_loss work.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{ '\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SYSTEM_PROMPT = "Respond in the format <reasoning>...</reasoning><answer>...</answer>"


def ensure_builtin(name: str) -> Path:
    """The folder of a built-in model, building it once (under a file lock) if needed: the untrained built-ins all
    together, a trained one (tiny-chat) from its base."""
    if name not in BUILTIN_MODELS:
        raise ValueError(f"unknown built-in model {name!r}")
    target = builtin_dir(name)
    if (target / "READY").exists():
        return target
    base = TRAINED_BUILTINS.get(name)
    base_dir = ensure_builtin(base) if base else None
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs starting together build once
        if not (target / "READY").exists():
            if base_dir is None:
                build_all()
            else:
                build_trained(name, base_dir, target)
    return target


def build_trained(name: str, base_dir: Path, target: Path) -> None:
    from workbench.core.paths import ASSETS_DIR
    from workbench.train import tiny_chat

    print(f"building builtin:{name} from builtin:{TRAINED_BUILTINS[name]} (once; cached in {target.parent})",
          flush=True)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tiny_chat.build(base_dir, tmp, ASSETS_DIR / "data")
    (tmp / "READY").write_text("1\n")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)


def _corpus(rng: random.Random, n: int = 3000):
    words = ("the a model learns to add small numbers one step at a time first it reads the question then it "
             "thinks and finally writes answer good bad yes no what is plus minus result because so instruction "
             "input output").split()
    for _ in range(n):
        a, b = rng.randint(0, 20), rng.randint(0, 20)
        yield f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n"
        yield f"<|im_start|>user\nWhat is {a} + {b}?<|im_end|>\n"
        yield f"<|im_start|>assistant\n<reasoning>{a} plus {b} is {a + b}</reasoning><answer>{a + b}</answer><|im_end|>\n"
        yield " ".join(rng.choices(words, k=10)) + "."


def build_tokenizer():
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=BUILTIN_VOCAB, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_corpus(random.Random(0)), trainer=trainer)
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|pad|>", bos_token=None, unk_token=None,
        additional_special_tokens=["<|endoftext|>", "<|im_start|>"], model_max_length=512, padding_side="right",
    )
    hf.chat_template = CHAT_TEMPLATE
    return hf


def build_all() -> None:
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM, Qwen2ForSequenceClassification

    tok = build_tokenizer()
    for name, spec in BUILTIN_SPECS.items():
        if name in TRAINED_BUILTINS:
            continue
        cfg = dict(
            vocab_size=len(tok), hidden_size=spec["hidden"], intermediate_size=spec["hidden"] * 2,
            num_hidden_layers=spec["layers"], num_attention_heads=spec["heads"], num_key_value_heads=spec["heads"],
            max_position_embeddings=512, tie_word_embeddings=True, pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id, bos_token_id=None,
        )
        torch.manual_seed(0)
        if name == "tiny-rm":
            model = Qwen2ForSequenceClassification(Qwen2Config(**cfg, id2label={0: "score"}, label2id={"score": 0}))
        else:
            model = Qwen2ForCausalLM(Qwen2Config(**cfg))
            model.generation_config.pad_token_id = tok.pad_token_id
            model.generation_config.eos_token_id = tok.eos_token_id
        target = builtin_dir(name)
        tmp = target.with_name(target.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        probe = "<|im_start|>user\nWhat is 12 + 7?<|im_end|>\n<reasoning>x</reasoning> hello  world\t!"
        reloaded = AutoTokenizer.from_pretrained(tmp)
        if reloaded(probe)["input_ids"] != tok(probe)["input_ids"]:
            raise RuntimeError("built-in tokenizer does not round-trip through AutoTokenizer")
        (tmp / "READY").write_text("1\n")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)


def main(argv: list[str] | None = None) -> int:
    """``python -m workbench.train.builtin [NAME ...]``: build the built-in models now (all when no NAME is given)
    into the workbench cache and print each folder; e.g. to prepare a machine before it goes offline."""
    import sys

    names = list(sys.argv[1:] if argv is None else argv) or list(BUILTIN_MODELS)
    unknown = [n for n in names if n.removeprefix("builtin:") not in BUILTIN_MODELS]
    if unknown:
        print(f"unknown built-in model(s): {', '.join(unknown)}; built-ins: {', '.join(BUILTIN_MODELS)}",
              file=sys.stderr)
        return 2
    for name in names:
        print(ensure_builtin(name.removeprefix("builtin:")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
