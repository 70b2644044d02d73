"""Decoded text never holds U+FFFD: bytes that are not valid UTF-8 come out as ``\\xNN`` escapes.

A byte-level BPE tokenizer (GPT-2, Qwen2, Llama 3, the built-ins) can emit a token that is part of a multi-byte
character, or bytes that are no character at all, as an undertrained model does. The tokenizers library decodes
those to U+FFFD ("�"), which loses the bytes and reads as a broken screen. ``escape_undecodable(tokenizer)``
patches the instance's ``_decode`` (what ``decode`` and ``batch_decode`` call, so trl's trainers, the reward
functions, the samples and the evals all see the same text): when the ordinary decode holds U+FFFD, the ids are
decoded again from their bytes with ``errors="backslashreplace"``. Text that decodes cleanly is untouched, and
tokenizers that are not byte-level are left as they are.
"""
from __future__ import annotations

import json
from functools import lru_cache

REPLACEMENT = "\ufffd"


@lru_cache(maxsize=1)
def _byte_of_char() -> dict[str, int]:
    """The inverse of the byte-level alphabet (GPT-2's bytes_to_unicode): each printable stand-in -> its byte."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return {c: b for b, c in bytes_to_unicode().items()}


def is_byte_level(tokenizer) -> bool:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return False
    try:
        decoder = json.loads(backend.to_str()).get("decoder") or {}
    except (ValueError, AttributeError):
        return False
    parts = decoder.get("decoders", [decoder]) if decoder.get("type") == "Sequence" else [decoder]
    return any(isinstance(p, dict) and p.get("type") == "ByteLevel" for p in parts)


def decode_bytes(tokenizer, ids, skip_special_tokens: bool = False) -> str:
    """The text of ``ids`` from their bytes: added/special tokens as their content (or dropped), the rest through
    the byte-level alphabet, invalid UTF-8 as ``\\xNN``."""
    byte_of = _byte_of_char()
    added = {i: t.content for i, t in getattr(tokenizer, "added_tokens_decoder", {}).items()}
    special = set(getattr(tokenizer, "all_special_ids", ()))
    out, pending = [], bytearray()

    def flush():
        if pending:
            out.append(pending.decode("utf-8", errors="backslashreplace"))
            pending.clear()

    for i in ids:
        i = int(i)
        if i in added:
            if skip_special_tokens and i in special:
                continue
            flush()
            out.append(added[i])
            continue
        token = tokenizer.convert_ids_to_tokens(i)
        if token is None:
            continue
        for ch in token:
            b = byte_of.get(ch)
            if b is None:  # not a byte-level stand-in: keep it as text
                flush()
                out.append(ch)
            else:
                pending.append(b)
    flush()
    return "".join(out)


def escape_undecodable(tokenizer):
    """Patch ``tokenizer`` (in place; also returned) so decoding never yields U+FFFD; a no-op for tokenizers that
    are not byte-level or are patched already."""
    if getattr(tokenizer, "_workbench_escapes", False) or not is_byte_level(tokenizer):
        return tokenizer
    plain = tokenizer._decode

    def _decode(token_ids, skip_special_tokens: bool = False, *args, **kwargs):
        text = plain(token_ids, skip_special_tokens, *args, **kwargs)
        if REPLACEMENT not in text:
            return text
        ids = [token_ids] if isinstance(token_ids, int) else list(token_ids)
        return decode_bytes(tokenizer, ids, skip_special_tokens)

    tokenizer._decode = _decode
    tokenizer._workbench_escapes = True
    return tokenizer
