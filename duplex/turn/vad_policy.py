"""Turn-taking v1: voice activity and a silence timeout.

The user's turn ends after `end_silence_ms` of silence; speech over the
agent interrupts it once it has lasted `interrupt_min_ms`. Simple and
predictable, but slower than people (REFERENCE §1): the VAP policy predicts
instead of waiting. This is the fallback (`turn.engine = "vad"`).
"""
from __future__ import annotations

from ..config import TurnConfig, VADConfig
from .base import Frame, TurnEvent, TurnEventKind as K
from .speech_tracker import SpeechTracker


class VADPolicy:
    name = "vad"

    def __init__(self, cfg: TurnConfig | None = None, vad: VADConfig | None = None):
        self.cfg = cfg or TurnConfig()
        vad = vad or VADConfig()
        self.tracker = SpeechTracker(vad.threshold, vad.neg_threshold, self.cfg.min_speech_ms,
                                     self.cfg.hangover_ms)
        self.reset()

    def reset(self) -> None:
        self.tracker.reset()
        self._turn_open = False  # user spoke since the floor was last taken
        self._overlap = False  # current segment started while the agent spoke
        self._interrupted = False

    @property
    def user_speaking(self) -> bool:
        return self.tracker.confirmed

    def hear(self, text: str) -> None:
        """Plain VAD endpointing does not read the words."""

    def update(self, frame: Frame) -> list[TurnEvent]:
        events: list[TurnEvent] = []
        for what, t in self.tracker.update(frame.t, frame.p_user):
            if what == "start":
                self._overlap, self._interrupted = frame.agent_active, False
                events.append(TurnEvent(K.SPEECH_START, t, {"overlap": self._overlap}))
                if not self._overlap:
                    self._turn_open = True
            else:
                events.append(TurnEvent(K.SPEECH_END, t))
                if self._overlap and not self._interrupted:
                    # Too short to interrupt: the agent talked on through it.
                    events.append(TurnEvent(K.BACKCHANNEL, t, {"duration_ms": self._seg_ms(t)}))
                self._overlap = False
        tr = self.tracker
        if (self._overlap and tr.confirmed and not self._interrupted
                and tr.voiced_ms >= self.cfg.interrupt_min_ms):
            self._interrupted, self._turn_open = True, True
            events.append(TurnEvent(K.INTERRUPT, tr.onset_t, {"voiced_ms": tr.voiced_ms}))
        if self._turn_open and not tr.active and tr.silence_ms(frame.t) >= self.cfg.end_silence_ms:
            self._turn_open = False
            events.append(TurnEvent(K.END_OF_TURN, frame.t,
                                    {"reason": "silence", "silence_ms": tr.silence_ms(frame.t)}))
        return events

    def _seg_ms(self, t_end: float) -> int:
        return int(round((t_end - self.tracker.onset_t) * 1000))
