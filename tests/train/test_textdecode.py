"""Decoded text never holds U+FFFD: the built-in byte-level tokenizer's undecodable bytes come out as \\xNN escapes,
in decode, batch_decode (what trl's trainers call) and the eval's generation; clean text is untouched."""
from __future__ import annotations

import pytest

pytest.importorskip("torch")

from workbench.train.builtin import ensure_builtin  # noqa: E402
from workbench.train.textdecode import REPLACEMENT, escape_undecodable, is_byte_level  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(ensure_builtin("tiny-lm"))


def broken_ids(tok) -> list[int]:
    """Token ids that decode, alone, to U+FFFD (single bytes of multi-byte characters)."""
    return [i for i in range(len(tok)) if REPLACEMENT in tok.decode([i])][:3]


def test_undecodable_bytes_are_escaped_not_replaced(tokenizer):
    bad = broken_ids(tokenizer)
    assert len(bad) == 3, "the byte-level alphabet has lone continuation bytes"
    text_ids = tokenizer("héllo <reasoning>ok</reasoning>")["input_ids"]
    seq = [tokenizer.convert_tokens_to_ids("<|im_start|>"), *text_ids, *bad, tokenizer.eos_token_id]
    assert REPLACEMENT in tokenizer.decode(seq), "the unpatched decoder loses the bytes"
    assert is_byte_level(tokenizer)
    escape_undecodable(tokenizer)
    escape_undecodable(tokenizer)  # idempotent
    out = tokenizer.decode(seq)
    assert REPLACEMENT not in out
    assert out.startswith("<|im_start|>héllo <reasoning>ok</reasoning>") and out.endswith("<|im_end|>")
    assert out.count("\\x") == 3, out
    batch = tokenizer.batch_decode([seq, text_ids], skip_special_tokens=True)
    assert batch[0].startswith("héllo") and "<|im_start|>" not in batch[0] and REPLACEMENT not in batch[0]
    assert batch[1] == "héllo <reasoning>ok</reasoning>", "clean text is decoded exactly as before"
    # a whole multi-byte character split over two tokens still decodes to the character
    e_ids = tokenizer("é")["input_ids"]
    assert tokenizer.decode(e_ids) == "é"


def test_a_tokenizer_that_is_not_byte_level_is_left_alone():
    class NotByteLevel:
        backend_tokenizer = None

        def _decode(self, ids, skip_special_tokens=False):
            return REPLACEMENT

    tok = NotByteLevel()
    assert escape_undecodable(tok)._decode([1]) == REPLACEMENT
