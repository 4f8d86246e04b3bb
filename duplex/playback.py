"""The client side of playback, sans-I/O: where agent audio lands in time.

A client plays agent audio as it arrives (after a small jitter buffer),
back to back; on `response.interrupted` it flushes what it has not played;
on `output_audio_buffer.paused` it holds playback until `resumed`. This
class keeps that timeline so a client can report its playback position and
write the agent's audio time-synchronous with its own input (the form
Full-Duplex-Bench expects). Times are the client's clock, in seconds,
with 0 at the first input sample sent.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Placed:
    start: float  # when its first sample plays
    audio: np.ndarray = field(repr=False)
    response_id: str | None = None
    rate: int = 24_000

    @property
    def end(self) -> float:
        return self.start + self.audio.size / self.rate


@dataclass
class PlaybackTimeline:
    rate: int = 24_000
    jitter_s: float = 0.0  # buffering before the first chunk of a burst plays
    pieces: list[Placed] = field(default_factory=list, repr=False)
    response_id: str | None = None
    _paused_at: float | None = None

    def on_event(self, event: dict, t: float) -> None:
        kind = event.get("type")
        if kind == "output_audio_buffer.started":
            self.response_id = event.get("response_id")
        elif kind == "response.interrupted":
            # held since the pause: nothing played after it
            self.flush(t if self._paused_at is None else min(t, self._paused_at))
        elif kind == "output_audio_buffer.paused":
            self._paused_at = t
        elif kind == "output_audio_buffer.resumed" and self._paused_at is not None:
            self._shift_after(self._paused_at, t - self._paused_at)
            self._paused_at = None

    def on_audio(self, audio: np.ndarray, t: float) -> Placed:
        """Agent audio received at `t`: it plays right after what is queued."""
        cursor = self.pieces[-1].end if self.pieces else 0.0
        start = cursor if cursor >= t else t + self.jitter_s  # underrun: a new burst
        if self._paused_at is not None:
            start = max(cursor, self._paused_at)  # moved to after the pause on resume
        piece = Placed(start, np.asarray(audio, dtype=np.float32), self.response_id, self.rate)
        self.pieces.append(piece)
        return piece

    def flush(self, t: float) -> float:
        """Drop everything not played by `t`; returns the seconds dropped."""
        dropped, kept = 0.0, []
        for p in self.pieces:
            if p.start >= t:
                dropped += p.audio.size / self.rate
                continue
            if p.end > t:
                n = int(round((t - p.start) * self.rate))
                dropped += (p.audio.size - n) / self.rate
                p.audio = p.audio[:n]
            kept.append(p)
        self.pieces = kept
        self._paused_at = None
        return dropped

    def _shift_after(self, t0: float, delta: float) -> None:
        """Pause from t0 for `delta` seconds: what plays after t0 plays later."""
        out = []
        for p in self.pieces:
            if p.end <= t0:
                out.append(p)
            elif p.start >= t0:
                out.append(Placed(p.start + delta, p.audio, p.response_id, self.rate))
            else:  # split at the pause
                n = int(round((t0 - p.start) * self.rate))
                out.append(Placed(p.start, p.audio[:n], p.response_id, self.rate))
                out.append(Placed(t0 + delta, p.audio[n:], p.response_id, self.rate))
        self.pieces = out

    def played_s(self, t: float, response_id: str | None = None) -> float:
        """Seconds of audio (of one response, or all) played by time `t`."""
        total = 0.0
        for p in self.pieces:
            if response_id is not None and p.response_id != response_id:
                continue
            total += min(max(0.0, t - p.start), p.audio.size / self.rate)
        return total

    def playing(self, t: float) -> bool:
        return any(p.start <= t < p.end for p in self.pieces[-4:])

    def segments(self) -> list[tuple[float, float]]:
        """Merged (start, end) stretches where agent audio plays."""
        out: list[list[float]] = []
        for p in sorted(self.pieces, key=lambda p: p.start):
            if p.audio.size == 0:
                continue
            if out and p.start <= out[-1][1] + 1e-3:
                out[-1][1] = max(out[-1][1], p.end)
            else:
                out.append([p.start, p.end])
        return [(a, b) for a, b in out]

    def render(self, duration_s: float) -> np.ndarray:
        """The agent's track, time-synchronous with the input, `duration_s` long."""
        n = int(round(duration_s * self.rate))
        track = np.zeros(n, dtype=np.float32)
        for p in self.pieces:
            a = int(round(p.start * self.rate))
            if a >= n:
                continue
            seg = p.audio[: n - a]
            track[a:a + seg.size] += seg
        return np.clip(track, -1.0, 1.0)
