"""Speech segments from per-frame speech probabilities.

Hysteresis (start at `threshold`, continue while >= `neg_threshold`), a
hangover that bridges short dips, and a minimum length before a segment is
confirmed: a burst shorter than `min_speech_ms` is never reported, which is
what keeps a cough from interrupting the agent. Shared by every policy.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..interfaces import FRAME_MS


@dataclass
class SpeechTracker:
    threshold: float = 0.5
    neg_threshold: float = 0.35
    min_speech_ms: int = 200
    hangover_ms: int = 60
    frame_ms: int = FRAME_MS

    def __post_init__(self):
        if not 0.0 <= self.neg_threshold <= self.threshold <= 1.0:
            raise ValueError("need 0 <= neg_threshold <= threshold <= 1")
        self.reset()

    def reset(self) -> None:
        self.active = False  # inside a (possibly unconfirmed) segment
        self.confirmed = False  # segment long enough to count as speech
        self.onset_t = 0.0  # start of the current segment
        self.last_voiced_t = 0.0  # end of the last voiced frame
        self.voiced_ms = 0  # voiced time in the current segment
        self._silent_ms = 0

    def silence_ms(self, t: float) -> float:
        """Milliseconds since the last voiced frame ended (0 while speaking)."""
        if self.active and self._silent_ms == 0:
            return 0.0
        # rounded: frame times are float sums, and 0.32 - 0.02 is 299.99... ms
        return max(0.0, round((t - self.last_voiced_t) * 1000, 3))

    def update(self, t: float, p: float) -> list[tuple[str, float]]:
        """Feed the frame ending at `t`; returns ("start", onset) / ("end", offset) happenings."""
        out: list[tuple[str, float]] = []
        voiced = p >= (self.neg_threshold if self.active else self.threshold)
        if voiced:
            if not self.active:
                self.active, self.onset_t, self.voiced_ms = True, t - self.frame_ms / 1000, 0
            self.voiced_ms += self.frame_ms
            self._silent_ms = 0
            self.last_voiced_t = t
            if not self.confirmed and self.voiced_ms >= self.min_speech_ms:
                self.confirmed = True
                out.append(("start", self.onset_t))
        elif self.active:
            self._silent_ms += self.frame_ms
            if self._silent_ms >= self.hangover_ms:
                if self.confirmed:
                    out.append(("end", self.last_voiced_t))
                self.active = self.confirmed = False
                self.voiced_ms = 0
        return out
