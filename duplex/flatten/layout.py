"""Chunk layouts of the full-duplex stages (REFERENCE §4).

Every chunk (160 ms = 2 Mimi frames by default) has the same positions:

    full            <|u|> U[f0,q0..] U[f1,q0..] <|a|> T0 T1 A[f0,q0..] A[f1,q0..]
    full_user_text  <|u|> U[f0,q0..] U[f1,q0..] UT0 UT1 <|a|> T0 T1 A[...] A[...]
    full_no_text    <|u|> U[f0,q0..] U[f1,q0..] <|a|> A[f0,q0..] A[f1,q0..]

U/A are the user's and the agent's codes, frame-major then codebook; T and
UT are text slots, one per frame by default (`text_slots`), filled with a
word's tokens from the slot of its start, `<pad>` when empty and `<epad>`
right before a word. The agent's slots of a chunk come after the user's audio
of that chunk, so the model answers what it has just heard: the agent audio
of chunk c plays during chunk c+1 (one chunk of latency, as in SyncLLM).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import IntEnum

import numpy as np

VARIANTS = ("full", "full_user_text", "full_no_text")


class Kind(IntEnum):
    """What a position holds; decides which ids are valid there."""

    CONTROL = 0     # a fixed control token
    USER_CODE = 1   # input: the user's codes
    USER_TEXT = 2   # the user's text slot (full_user_text)
    AGENT_TEXT = 3  # the agent's text slot: text, <pad> or <epad>
    AGENT_CODE = 4  # the agent's codes
    OUTPUT_TEXT = 5  # turn-based stages: text or control tokens the model writes


@dataclass(frozen=True)
class ChunkLayout:
    variant: str = "full"
    chunk_ms: int = 160
    frame_rate: float = 12.5
    num_codebooks: int = 4
    text_slots: int = 2

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown chunk layout {self.variant!r} "
                             f"(known: {', '.join(VARIANTS)})")
        frames = self.chunk_ms * self.frame_rate / 1000
        if frames < 1 or abs(frames - round(frames)) > 1e-6:
            raise ValueError(f"chunk_ms={self.chunk_ms} is not a whole number of codec frames at "
                             f"{self.frame_rate} Hz")
        if self.num_codebooks < 1:
            raise ValueError("num_codebooks must be at least 1")
        if self.variant != "full_no_text" and self.text_slots < 1:
            raise ValueError("text_slots must be at least 1")

    @property
    def frames(self) -> int:
        """Codec frames per chunk."""
        return int(round(self.chunk_ms * self.frame_rate / 1000))

    @property
    def slots(self) -> int:
        """Text slots per chunk (0 without text)."""
        return 0 if self.variant == "full_no_text" else self.text_slots

    @property
    def slot_s(self) -> float:
        return self.chunk_ms / 1000 / max(self.slots, 1)

    def positions(self) -> list[tuple[Kind, int, str]]:
        """(kind, index, control token) for each position of a chunk. index is
        frame * Q + codebook at code positions, the slot at text positions, -1
        at control positions."""
        q, f = self.num_codebooks, self.frames
        out: list[tuple[Kind, int, str]] = [(Kind.CONTROL, -1, "<|u|>")]
        out += [(Kind.USER_CODE, i, "") for i in range(f * q)]
        if self.variant == "full_user_text":
            out += [(Kind.USER_TEXT, i, "") for i in range(self.slots)]
        out.append((Kind.CONTROL, -1, "<|a|>"))
        if self.variant != "full_no_text":
            out += [(Kind.AGENT_TEXT, i, "") for i in range(self.slots)]
        out += [(Kind.AGENT_CODE, i, "") for i in range(f * q)]
        return out

    @property
    def length(self) -> int:
        """Tokens per chunk."""
        return len(self.positions())

    def kind_array(self) -> np.ndarray:
        return np.array([k for k, _, _ in self.positions()], np.int8)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ChunkLayout:
        return cls(**{k: data[k] for k in ("variant", "chunk_ms", "frame_rate", "num_codebooks",
                                            "text_slots") if k in data})
