"""A flattened token sequence with what each position is and its loss weight.

The loss is on the model's own output only: the agent's text slots and codes
(and the outputs of the turn-based stages). Weights follow Moshi and
moshi-finetune: the semantic codebook weighted up (100x), `<pad>` text slots
weighted down (0.5); positions past the end of a clip (padding) get 0. Text
and audio are separate groups: the training loss is the weighted mean over
the text group plus the weighted mean over the audio group, so neither drowns
the other whatever the weights.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from enum import IntEnum

import numpy as np

from .layout import Kind
from .vocab import FlatVocab


class LossGroup(IntEnum):
    NONE = 0
    TEXT = 1
    AUDIO = 2


@dataclass(frozen=True)
class LossWeights:
    text: float = 1.0        # agent text tokens and <epad>
    text_pad: float = 0.5    # agent <pad> slots
    semantic: float = 100.0  # agent codebook 0
    acoustic: float = 1.0    # agent codebooks 1..Q-1
    user_text: float = 0.0   # multiplies the text weights on user text slots (0: input only)

    def __post_init__(self):
        for f in fields(self):
            if getattr(self, f.name) < 0:
                raise ValueError(f"loss weight {f.name} must be >= 0")

    def to_dict(self) -> dict:
        return asdict(self)


def loss_weights(tokens: np.ndarray, kinds: np.ndarray, codebooks: np.ndarray,
                 vocab: FlatVocab, w: LossWeights) -> tuple[np.ndarray, np.ndarray]:
    """(weight, group) of predicting each position's token."""
    tokens, kinds, codebooks = np.asarray(tokens), np.asarray(kinds), np.asarray(codebooks)
    weight = np.zeros(len(tokens), np.float32)
    group = np.zeros(len(tokens), np.int8)
    text_w = np.where(tokens == vocab.pad, w.text_pad, w.text).astype(np.float32)
    agent_text = kinds == Kind.AGENT_TEXT
    weight[agent_text] = text_w[agent_text]
    out_text = kinds == Kind.OUTPUT_TEXT
    weight[out_text] = w.text
    user_text = kinds == Kind.USER_TEXT
    weight[user_text] = text_w[user_text] * w.user_text
    group[agent_text | out_text | user_text] = LossGroup.TEXT
    codes = kinds == Kind.AGENT_CODE
    weight[codes] = np.where(codebooks[codes] == 0, w.semantic, w.acoustic)
    group[codes] = LossGroup.AUDIO
    group[weight == 0] = LossGroup.NONE
    return weight, group


@dataclass
class FlatSequence:
    tokens: np.ndarray     # int64 [L]
    kinds: np.ndarray      # int8 [L], Kind
    codebooks: np.ndarray  # int8 [L], the codebook at code positions, -1 elsewhere
    weights: np.ndarray    # float32 [L], loss weight of predicting tokens[i] from tokens[:i]
    groups: np.ndarray     # int8 [L], LossGroup
    chunk_len: int = 0     # tokens per chunk (full-duplex layouts), 0 for turn-based ones

    def __post_init__(self):
        n = len(self.tokens)
        if any(len(a) != n for a in (self.kinds, self.codebooks, self.weights, self.groups)):
            raise ValueError("FlatSequence arrays must have the same length")

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def num_chunks(self) -> int:
        if not self.chunk_len:
            raise ValueError("a turn-based sequence has no chunks")
        return len(self.tokens) // self.chunk_len

    def slice(self, start: int, stop: int) -> FlatSequence:
        return FlatSequence(self.tokens[start:stop], self.kinds[start:stop],
                            self.codebooks[start:stop], self.weights[start:stop],
                            self.groups[start:stop], self.chunk_len)

    def crop(self, first_chunk: int, num_chunks: int) -> FlatSequence:
        """Chunks [first_chunk, first_chunk + num_chunks) as their own sequence."""
        if first_chunk < 0 or num_chunks < 1 or first_chunk >= self.num_chunks:
            raise ValueError(f"cannot crop chunks {first_chunk}+{num_chunks} of {self.num_chunks}")
        return self.slice(first_chunk * self.chunk_len, (first_chunk + num_chunks) * self.chunk_len)

    def windows(self, max_chunks: int, min_chunks: int = 1) -> list[FlatSequence]:
        """Consecutive crops of at most `max_chunks` chunks (for training examples)."""
        out = []
        for c in range(0, self.num_chunks, max_chunks):
            n = min(max_chunks, self.num_chunks - c)
            if n >= min_chunks:
                out.append(self.crop(c, n))
        return out

    @staticmethod
    def concat(parts: list[FlatSequence]) -> FlatSequence:
        if not parts:
            raise ValueError("nothing to concatenate")
        def cat(name):
            return np.concatenate([getattr(p, name) for p in parts])

        chunk = parts[0].chunk_len if all(p.chunk_len == parts[0].chunk_len for p in parts) else 0
        return FlatSequence(cat("tokens"), cat("kinds"), cat("codebooks"), cat("weights"),
                            cat("groups"), chunk)
