"""Text slots aligned to word starts: `<pad>` when empty, `<epad>` before a word.

A word's tokens go from the slot holding its start time onwards; the slot
before its first token holds `<epad>` (every word but one in the very first
slot has one, so the stream can be cut back into words). When the previous
word's tokens still occupy those slots, the word moves to the first slot that
leaves room.
Reading the slots back gives each word's tokens and the slot it starts in:
its start time to the slot (80 ms by default), exactly when no word had to
move. Word ends are not in the stream.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_EPS = 1e-6  # times on a slot boundary belong to the slot they open


@dataclass(frozen=True)
class Word:
    text: str
    start: float
    end: float | None = None


def slot_of(t: float, slot_s: float) -> int:
    return int(math.floor(t / slot_s + _EPS))


def place_words(words: Sequence[tuple[Sequence[int], float]], num_slots: int, slot_s: float,
                pad: int, epad: int) -> np.ndarray:
    """Token ids for `num_slots` slots from (token ids, start seconds) per word.

    Words must come in order of start; tokens that do not fit before the last
    slot are dropped."""
    slots = np.full(num_slots, pad, dtype=np.int64)
    free = 0  # first slot the next <epad> may use
    last_start = -math.inf
    for ids, start in words:
        if start < last_start:
            raise ValueError("words must be sorted by start time")
        last_start = start
        if len(ids) == 0:
            continue
        first = slot_of(start, slot_s)
        if first > 0 or free > 0:  # only a word in the very first slot goes without <epad>
            first = max(first, free + 1)
        if first >= num_slots:
            break
        if first > 0:
            slots[first - 1] = epad
        n = min(len(ids), num_slots - first)
        slots[first:first + n] = ids[:n]
        free = first + n
    return slots


def read_words(slots: Sequence[int], pad: int, epad: int) -> list[tuple[list[int], int]]:
    """(token ids, first slot) of each word in a run of text slots: a word is a
    run of text tokens (a generated stream may also start one right after a pad)."""
    words: list[tuple[list[int], int]] = []
    in_word = False
    for slot, token in enumerate(int(t) for t in slots):
        if token in (pad, epad):
            in_word = False
            continue
        if not in_word:
            words.append(([], slot))
            in_word = True
        words[-1][0].append(token)
    return words
