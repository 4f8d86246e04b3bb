"""A model of the client's playback of agent audio.

The server paces agent audio at real time plus a small lead, and needs to
know what the user has heard: to cut the history on barge-in and to tell the
turn-taker when the agent is audible. This models the client's player:
audio plays from when it is sent, at real time, stalls when the buffer runs
dry, and stops while paused. Client playback reports overwrite the estimate.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from .text import heard_prefix


@dataclass
class Segment:
    """A synthesized chunk of the response on the response's audio timeline."""

    seq: int
    text: str
    start: int  # first sample, counted from the response's first sample
    n: int


class Playout:
    def __init__(self, rate: int, lead_ms: int = 200, piece_ms: int = 40):
        self.rate = rate
        self.lead = int(rate * lead_ms / 1000)
        self.piece = max(1, int(rate * piece_ms / 1000))
        self.reset(0.0)

    def reset(self, now: float) -> None:
        self._pending: deque[np.ndarray] = deque()
        self.segments: list[Segment] = []
        self.total = 0  # samples received from TTS
        self.sent = 0  # samples released to the client
        self.played = 0.0  # estimated samples played by the client
        self.paused = False
        self._last = now

    # -- feeding --------------------------------------------------------
    def add(self, audio: np.ndarray, seq: int, text: str) -> None:
        """Queue one synthesized chunk (any length) belonging to sentence `seq`."""
        n = int(audio.size)
        if n == 0:
            return
        last = self.segments[-1] if self.segments else None
        if last is not None and last.seq == seq:
            last.n += n  # a TTS engine may stream one sentence in pieces
        else:
            self.segments.append(Segment(seq, text, self.total, n))
        self.total += n
        self._pending.append(np.asarray(audio, dtype=np.float32))

    # -- clock ----------------------------------------------------------
    def advance(self, now: float) -> None:
        if now > self._last and not self.paused:
            self.played = min(float(self.sent), self.played + (now - self._last) * self.rate)
        self._last = max(self._last, now)

    def release(self, now: float) -> list[np.ndarray]:
        """Pieces of audio to send now: keep at most `lead` samples ahead of playback."""
        self.advance(now)
        out = []
        while self._pending and not self.paused and self.sent - self.played < self.lead:
            head = self._pending[0]
            piece, rest = head[: self.piece], head[self.piece:]
            if rest.size:
                self._pending[0] = rest
            else:
                self._pending.popleft()
            self.sent += piece.size
            out.append(piece)
        return out

    def pause(self, now: float) -> None:
        self.advance(now)
        self.paused = True

    def resume(self, now: float) -> None:
        self.advance(now)
        self.paused = False

    def report(self, played_samples: float, now: float) -> None:
        """The client says how much it has played; trust it over the estimate."""
        self.advance(now)
        self.played = float(min(max(0.0, played_samples), self.sent))

    # -- state ----------------------------------------------------------
    def audible(self) -> bool:
        return not self.paused and self.sent - self.played > 0.5

    @property
    def unsent(self) -> int:
        return self.total - self.sent

    def drained(self) -> bool:
        return not self._pending and self.played >= self.sent - 0.5

    def played_ms(self) -> int:
        return int(round(self.played * 1000 / self.rate))

    def heard_text(self, played: float | None = None) -> str:
        """The response's text as far as it was heard."""
        played = self.played if played is None else played
        words = []
        for seg in self.segments:
            if played <= seg.start:
                break
            frac = (played - seg.start) / seg.n
            part = heard_prefix(seg.text, frac)
            if part:
                words.append(part)
        return " ".join(words)
