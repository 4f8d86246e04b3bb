"""The id space of a flattened speech-text model (REFERENCE §4).

    [0, text_size)                      the backbone LM's own text tokens
    [special_base, special_base + S)    control tokens, SPECIAL_TOKENS order
    code_base + q * codebook_size + c   codec code c of codebook q

`special_base` is the tokenizer's length; `text_size` may be smaller when the
LM's embedding table is padded past its tokenizer. The same code ids serve the
user's and the agent's audio: which is which is given by the position.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

SPECIAL_TOKENS = (
    "<|u|>",    # a chunk's user audio follows
    "<|a|>",    # a chunk's agent slots follow (or an agent turn, half-duplex)
    "<pad>",    # text slot with no new token
    "<epad>",   # text slot right before a word's first token
    "<|ut|>",   # user text follows (half-duplex turns)
    "<|at|>",   # text output follows (ASR task)
    "<|aa|>",   # audio output follows (TTS task, agent turns)
    "<|eot|>",  # end of a turn or task
    "<|asr|>",  # task: audio in, text out
    "<|tts|>",  # task: text in, audio out
)


@dataclass(frozen=True)
class FlatVocab:
    text_size: int
    num_codebooks: int
    codebook_size: int
    special_base: int = -1  # -1: right after the text ids

    def __post_init__(self):
        if self.text_size <= 0 or self.num_codebooks <= 0 or self.codebook_size <= 0:
            raise ValueError(f"vocabulary sizes must be positive: {self}")
        if self.special_base == -1:
            object.__setattr__(self, "special_base", self.text_size)
        if self.special_base < self.text_size:
            raise ValueError(f"special_base {self.special_base} overlaps the text ids "
                             f"[0, {self.text_size})")

    @property
    def code_base(self) -> int:
        return self.special_base + len(SPECIAL_TOKENS)

    @property
    def size(self) -> int:
        """Rows the LM's embedding table needs."""
        return self.code_base + self.num_codebooks * self.codebook_size

    def special(self, name: str) -> int:
        try:
            return self.special_base + SPECIAL_TOKENS.index(name)
        except ValueError:
            raise KeyError(f"unknown control token {name!r} (known: {', '.join(SPECIAL_TOKENS)})")

    @property
    def pad(self) -> int:
        return self.special("<pad>")

    @property
    def epad(self) -> int:
        return self.special("<epad>")

    def code_range(self, q: int) -> tuple[int, int]:
        """[start, stop) of codebook q's ids."""
        if not 0 <= q < self.num_codebooks:
            raise ValueError(f"codebook {q} out of range 0..{self.num_codebooks - 1}")
        start = self.code_base + q * self.codebook_size
        return start, start + self.codebook_size

    def code_ids(self, codes: np.ndarray) -> np.ndarray:
        """[Q, F] codes -> [Q, F] token ids."""
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim != 2 or codes.shape[0] != self.num_codebooks:
            raise ValueError(f"codes must be shaped [{self.num_codebooks}, frames], "
                             f"got {codes.shape}")
        if codes.size and (codes.min() < 0 or codes.max() >= self.codebook_size):
            raise ValueError(f"codes must lie in [0, {self.codebook_size})")
        offsets = self.code_base + np.arange(self.num_codebooks)[:, None] * self.codebook_size
        return codes + offsets

    def codes_of(self, ids: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Token ids at codebook positions q -> codes (checks the ids belong to q)."""
        ids, q = np.asarray(ids, np.int64), np.asarray(q, np.int64)
        codes = ids - self.code_base - q * self.codebook_size
        if codes.size and (codes.min() < 0 or codes.max() >= self.codebook_size):
            raise ValueError("a codec position holds an id outside its codebook's range")
        return codes

    def is_text(self, ids: np.ndarray) -> np.ndarray:
        return np.asarray(ids) < self.text_size

    def to_dict(self) -> dict:
        return asdict(self) | {"special_tokens": list(SPECIAL_TOKENS)}

    @classmethod
    def from_dict(cls, data: dict) -> FlatVocab:
        specials = data.get("special_tokens")
        if specials is not None and tuple(specials) != SPECIAL_TOKENS:
            raise ValueError(f"model was trained with control tokens {specials}, this version "
                             f"uses {list(SPECIAL_TOKENS)}")
        return cls(int(data["text_size"]), int(data["num_codebooks"]), int(data["codebook_size"]),
                   int(data.get("special_base", -1)))
