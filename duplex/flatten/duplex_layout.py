"""Flatten a two-speaker dialogue into chunks (full-duplex stages), and back.

Input: the agent's and the user's codes (same number of frames, a whole
number of chunks: pad the audio first), each speaker's words with start
times, and a `tokenize(word) -> ids` function (the backbone's tokenizer;
see `duplex.models.flatten.text`). Output: a `FlatSequence` in the layout of
`ChunkLayout`, with its loss weights. `unflatten_duplex` inverts it: the same
codes, and the words with their starts on the text-slot grid.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .layout import ChunkLayout, Kind
from .sequence import FlatSequence, LossWeights, loss_weights
from .text_slots import Word, place_words, read_words
from .vocab import FlatVocab

Tokenize = Callable[[str], Sequence[int]]
Detokenize = Callable[[Sequence[int]], str]


@dataclass
class FlatDialogue:
    """What `unflatten_duplex` recovers."""

    agent_codes: np.ndarray  # [Q, F]
    user_codes: np.ndarray   # [Q, F]
    agent_words: list[Word]  # start on the slot grid, end None
    user_words: list[Word]   # only with the full_user_text layout


def _check_codes(name: str, codes: np.ndarray, layout: ChunkLayout) -> np.ndarray:
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[0] != layout.num_codebooks:
        raise ValueError(f"{name} must be shaped [{layout.num_codebooks}, frames], "
                         f"got {codes.shape}")
    if codes.shape[1] == 0 or codes.shape[1] % layout.frames:
        raise ValueError(f"{name} has {codes.shape[1]} frames, not a positive multiple of "
                         f"{layout.frames} (pad the audio to whole {layout.chunk_ms} ms chunks)")
    return codes


def _slots(words: Sequence[Word], num_slots: int, layout: ChunkLayout, vocab: FlatVocab,
           tokenize: Tokenize) -> np.ndarray:
    ordered = sorted(words, key=lambda w: w.start)
    return place_words([(list(tokenize(w.text)), w.start) for w in ordered], num_slots,
                       layout.slot_s, vocab.pad, vocab.epad)


def flatten_duplex(agent_codes: np.ndarray, user_codes: np.ndarray, agent_words: Sequence[Word],
                   user_words: Sequence[Word], *, vocab: FlatVocab, layout: ChunkLayout,
                   tokenize: Tokenize, weights: LossWeights = LossWeights(),
                   valid_s: float | None = None) -> FlatSequence:
    """The dialogue as chunks. Loss weights are 0 from `valid_s` seconds on
    (the padding at the end of a clip)."""
    agent_codes = _check_codes("agent_codes", agent_codes, layout)
    user_codes = _check_codes("user_codes", user_codes, layout)
    if agent_codes.shape != user_codes.shape:
        raise ValueError(f"agent and user codes differ in shape: {agent_codes.shape} vs "
                         f"{user_codes.shape}")
    if layout.num_codebooks != vocab.num_codebooks:
        raise ValueError("layout and vocabulary disagree on the number of codebooks")
    q, f = layout.num_codebooks, layout.frames
    chunks = agent_codes.shape[1] // f
    a_ids = vocab.code_ids(agent_codes)
    u_ids = vocab.code_ids(user_codes)
    a_text = u_text = None
    if layout.slots:
        a_text = _slots(agent_words, chunks * layout.slots, layout, vocab, tokenize)
        if layout.variant == "full_user_text":
            u_text = _slots(user_words, chunks * layout.slots, layout, vocab, tokenize)

    positions = layout.positions()
    tokens = np.empty((chunks, len(positions)), np.int64)
    codebooks = np.full(len(positions), -1, np.int8)
    time_s = np.empty((chunks, len(positions)))  # when each position's content happens
    chunk_start = np.arange(chunks) * layout.chunk_ms / 1000
    frame_s, c_frames = 1 / layout.frame_rate, np.arange(chunks) * f
    for j, (kind, idx, ctrl) in enumerate(positions):
        if kind == Kind.CONTROL:
            tokens[:, j] = vocab.special(ctrl)
            time_s[:, j] = chunk_start
        elif kind in (Kind.USER_CODE, Kind.AGENT_CODE):
            src = u_ids if kind == Kind.USER_CODE else a_ids
            tokens[:, j] = src[idx % q, c_frames + idx // q]
            codebooks[j] = idx % q
            time_s[:, j] = chunk_start + (idx // q) * frame_s
        else:
            src = u_text if kind == Kind.USER_TEXT else a_text
            tokens[:, j] = src[np.arange(chunks) * layout.slots + idx]
            time_s[:, j] = chunk_start + idx * layout.slot_s
    kinds = np.tile(layout.kind_array(), chunks)
    codebooks = np.tile(codebooks, chunks)
    tokens = tokens.reshape(-1)
    w, g = loss_weights(tokens, kinds, codebooks, vocab, weights)
    if valid_s is not None:
        beyond = time_s.reshape(-1) >= valid_s - 1e-9
        w[beyond], g[beyond] = 0.0, 0
    return FlatSequence(tokens, kinds, codebooks, w, g, chunk_len=len(positions))


def unflatten_duplex(tokens: np.ndarray, *, vocab: FlatVocab, layout: ChunkLayout,
                     detokenize: Detokenize) -> FlatDialogue:
    """Codes and words back from a flattened sequence (checks the layout on the way)."""
    tokens = np.asarray(tokens, np.int64)
    n = layout.length
    if tokens.ndim != 1 or len(tokens) == 0 or len(tokens) % n:
        raise ValueError(f"a {layout.variant} sequence is a whole number of {n}-token chunks, "
                         f"got {tokens.shape}")
    grid = tokens.reshape(-1, n)
    chunks, q, f = grid.shape[0], layout.num_codebooks, layout.frames
    agent = np.zeros((q, chunks * f), np.int64)
    user = np.zeros((q, chunks * f), np.int64)
    a_text = np.full(chunks * max(layout.slots, 1), vocab.pad, np.int64)
    u_text = a_text.copy()
    c_frames = np.arange(chunks) * f
    for j, (kind, idx, ctrl) in enumerate(layout.positions()):
        col = grid[:, j]
        if kind == Kind.CONTROL:
            if np.any(col != vocab.special(ctrl)):
                raise ValueError(f"position {j} of every chunk must be {ctrl}")
        elif kind in (Kind.USER_CODE, Kind.AGENT_CODE):
            dst = user if kind == Kind.USER_CODE else agent
            dst[idx % q, c_frames + idx // q] = vocab.codes_of(col, np.full_like(col, idx % q))
        else:
            if np.any((col >= vocab.text_size) & (col != vocab.pad) & (col != vocab.epad)):
                raise ValueError(f"text slot at position {j} holds a non-text id")
            dst = u_text if kind == Kind.USER_TEXT else a_text
            dst[np.arange(chunks) * layout.slots + idx] = col

    def words(slots: np.ndarray) -> list[Word]:
        return [Word(detokenize(ids), first * layout.slot_s)
                for ids, first in read_words(slots, vocab.pad, vocab.epad)]

    return FlatDialogue(agent, user, words(a_text) if layout.slots else [],
                        words(u_text) if layout.variant == "full_user_text" else [])
