"""Words <-> the backbone's text ids, the way the flattened format uses them.

A word is tokenized with a leading space, as it appears in running text (so
the backbone's knowledge of text carries over); decoding strips it again."""
from __future__ import annotations

from collections.abc import Callable, Sequence


def word_codec(tokenizer) -> tuple[Callable[[str], list[int]], Callable[[Sequence[int]], str]]:
    """(tokenize, detokenize) for `duplex.flatten` from a transformers tokenizer."""

    def tokenize(word: str) -> list[int]:
        return list(tokenizer.encode(" " + word.strip(), add_special_tokens=False))

    def detokenize(ids: Sequence[int]) -> str:
        return tokenizer.decode(list(ids), skip_special_tokens=False).strip()

    return tokenize, detokenize
