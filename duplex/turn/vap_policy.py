"""Turn-taking v2: Voice Activity Projection (REFERENCE §2).

The perception worker puts the model's projections for each 20 ms frame in
`frame.vap` (speaker 0 = user, 1 = agent). The policy:

- user turn, then silence: take the floor as soon as the model projects a
  shift with confidence (p_now[agent] >= shift_threshold) once min_gap_ms of
  silence has passed; after vap_end_silence_ms take it unless the model
  projects a hold (p_now[agent] < hold_threshold); take it anyway after
  max_silence_ms (the safety net). The defaults were chosen on Switchboard
  validation dialogues (recipes/vap/compare.py).
- user speech over the agent: once it is confirmed speech (min_speech_ms),
  hold the agent's audio (PAUSE_AGENT, if pause_on_overlap) unless the model
  already calls it a backchannel. Then either it ends within
  backchannel_max_ms while the model does not project a user turn
  (p_future[user] < user_turn_threshold): BACKCHANNEL (+ RESUME_AGENT); or it
  is a turn: INTERRUPT, at vap_interrupt_ms if the model projects a user
  turn, else when it outlasts backchannel_max_ms. A sound shorter than
  backchannel_max_ms can only interrupt after it ended with a projected user
  turn, so an "mm-hm" the model recognises never stops the agent. A held
  agent resumes only after resume_silence_ms of quiet: "Sorry, | tell me..."
  pauses between words, and speech that comes back within that window
  continues the same overlap (its length counts from the first onset), so
  the agent neither talks over the rest of the sentence nor waits longer to
  yield.
- while the user holds the floor: BACKCHANNEL_OPPORTUNITY when the model
  projects that the agent would make a short sound now (p_bc[agent]).

With words (`hear()` gets the user's turn so far from the ASR partials and a
lexical end-of-turn model scores it, duplex/turn/lexical.py): a turn whose
words look unfinished ("...a table for") is waited on up to
unfinished_max_silence_ms whatever the voice activity says; one whose words
look finished is answered after finished_gap_ms unless VAP projects a hold.

Without projections (`frame.vap is None`) it behaves like the VAD policy
(end of turn after end_silence_ms).
"""
from __future__ import annotations

from ..config import TurnConfig, VADConfig
from .base import AGENT, USER, Frame, TurnEvent, TurnEventKind as K, VapOutput
from .lexical import LexicalTurnEnd
from .speech_tracker import SpeechTracker


_EPS_MS = 1e-3  # frame-time differences are float sums: 0.32 - 0.02 s is 299.99... ms


class VAPPolicy:
    name = "vap"

    def __init__(self, cfg: TurnConfig | None = None, vad: VADConfig | None = None,
                 words: LexicalTurnEnd | None = None):
        self.cfg = cfg = cfg or TurnConfig()
        self.words = words
        vad = vad or VADConfig()
        for name in ("shift_threshold", "hold_threshold", "user_turn_threshold",
                     "backchannel_threshold", "bc_opportunity_threshold", "words_hold_threshold"):
            if not 0.0 <= getattr(cfg, name) <= 1.0:
                raise ValueError(f"turn.{name} must lie in [0, 1], got {getattr(cfg, name)}")
        if not cfg.min_gap_ms <= cfg.max_silence_ms or not cfg.vap_end_silence_ms <= cfg.max_silence_ms:
            raise ValueError("turn.min_gap_ms and turn.vap_end_silence_ms must not exceed "
                             "turn.max_silence_ms")
        if cfg.unfinished_max_silence_ms < cfg.max_silence_ms:
            raise ValueError("turn.unfinished_max_silence_ms must be at least turn.max_silence_ms")
        self.tracker = SpeechTracker(vad.threshold, vad.neg_threshold, cfg.min_speech_ms,
                                     cfg.hangover_ms)
        self.reset()

    def reset(self) -> None:
        self.tracker.reset()
        self._turn_open = False  # the user spoke since the floor was last taken
        self._overlap = False  # the current user segment started while the agent spoke
        self._paused = False  # we asked for the agent's audio to be held
        self._interrupted = False
        self._episode_onset = 0.0  # first onset of the overlap (speech resumed in a pause continues it)
        self._pending_bc: int | None = None  # backchannel length, waiting for resume_silence_ms
        self._last_opportunity = float("-inf")
        self._p_words: float | None = None  # P(turn over | the user's words so far)

    def hear(self, text: str) -> None:
        """The user's current turn as recognised so far (each ASR partial)."""
        if self.words is not None and self.cfg.lexical:
            self._p_words = self.words.p_shift(text)

    @property
    def user_speaking(self) -> bool:
        return self.tracker.confirmed

    @property
    def agent_paused(self) -> bool:
        return self._paused

    def _user_turn(self, vap: VapOutput | None) -> bool:
        return vap is not None and vap.p_future[USER] >= self.cfg.user_turn_threshold

    def _interrupt(self, t: float, frame: Frame, reason: str) -> TurnEvent:
        self._interrupted, self._turn_open, self._paused = True, True, False
        self._pending_bc = None
        info = {"reason": reason, "voiced_ms": self.tracker.voiced_ms}
        if frame.vap is not None:
            info["p_future_user"] = round(frame.vap.p_future[USER], 3)
        return TurnEvent(K.INTERRUPT, t, info)

    def update(self, frame: Frame) -> list[TurnEvent]:
        cfg, tr, vap = self.cfg, self.tracker, frame.vap
        events: list[TurnEvent] = []
        for what, t in tr.update(frame.t, frame.p_user):
            if what == "start":
                self._interrupted = False
                if self._pending_bc is not None:  # talk resumed before the agent did: same overlap
                    self._pending_bc, self._overlap = None, True
                    events.append(TurnEvent(K.SPEECH_START, t, {"overlap": True}))
                    continue
                self._overlap = frame.agent_active or self._paused
                self._episode_onset = t
                events.append(TurnEvent(K.SPEECH_START, t, {"overlap": self._overlap}))
                if not self._overlap:
                    if not self._turn_open:
                        self._p_words = None  # a new turn: its words are still to come
                    self._turn_open = True
                elif (cfg.pause_on_overlap and not self._paused
                      and not (vap is not None and vap.p_bc[USER] >= cfg.backchannel_threshold)):
                    self._paused = True
                    events.append(TurnEvent(K.PAUSE_AGENT, frame.t, {
                        "p_backchannel": None if vap is None else round(vap.p_bc[USER], 3)}))
            else:
                events.append(TurnEvent(K.SPEECH_END, t))
                if self._overlap and not self._interrupted:
                    dur = int(round((t - self._episode_onset) * 1000))
                    if dur > cfg.backchannel_max_ms or self._user_turn(vap):
                        events.append(self._interrupt(self._episode_onset, frame, "turn_after_overlap"))
                    elif self._paused:
                        self._pending_bc = dur  # resume once the quiet lasts
                    else:
                        events.append(TurnEvent(K.BACKCHANNEL, t, {"duration_ms": dur}))
                self._overlap = False
        if self._pending_bc is not None and tr.silence_ms(frame.t) >= cfg.resume_silence_ms:
            if self._user_turn(vap):
                events.append(self._interrupt(self._episode_onset, frame, "turn_after_overlap"))
            else:
                events.append(TurnEvent(K.BACKCHANNEL, tr.last_voiced_t,
                                        {"duration_ms": self._pending_bc}))
                events.append(TurnEvent(K.RESUME_AGENT, frame.t))
                self._pending_bc, self._paused = None, False
        # barge-in is decided on voiced frames only (not in the hangover after a sound)
        if self._overlap and tr.confirmed and not self._interrupted and tr.silence_ms(frame.t) == 0:
            if (frame.t - self._episode_onset) * 1000 > cfg.backchannel_max_ms + _EPS_MS:
                events.append(self._interrupt(self._episode_onset, frame, "long_overlap"))
            elif tr.voiced_ms >= cfg.vap_interrupt_ms and self._user_turn(vap):
                events.append(self._interrupt(self._episode_onset, frame, "vap"))
        if self._turn_open and not tr.active and not frame.agent_active:
            events += self._end_of_turn(frame)
        if (vap is not None and self._turn_open and not frame.agent_active
                and vap.p_bc[AGENT] >= cfg.bc_opportunity_threshold
                and (frame.t - self._last_opportunity) * 1000 + _EPS_MS >= cfg.bc_opportunity_gap_ms):
            self._last_opportunity = frame.t
            events.append(TurnEvent(K.BACKCHANNEL_OPPORTUNITY, frame.t,
                                    {"p_backchannel": round(vap.p_bc[AGENT], 3)}))
        return events

    def _end_of_turn(self, frame: Frame) -> list[TurnEvent]:
        cfg, vap = self.cfg, frame.vap
        silence = self.tracker.silence_ms(frame.t)  # rounded by the tracker: 300.0, not 299.99...
        reason, pw = None, self._p_words
        if pw is not None and pw < cfg.words_hold_threshold:
            if silence >= cfg.unfinished_max_silence_ms:
                reason = "max_silence"  # the words were unfinished, but the silence goes on
        elif silence >= cfg.max_silence_ms:
            reason = "max_silence"
        elif vap is None:
            reason = "silence" if silence >= cfg.end_silence_ms else None
        elif (pw is not None and pw >= cfg.words_shift_threshold and silence >= cfg.finished_gap_ms
              and vap.p_now[AGENT] >= cfg.hold_threshold):
            reason = "words_finished"
        elif silence >= cfg.min_gap_ms and vap.p_now[AGENT] >= cfg.shift_threshold:
            reason = "vap_shift"  # a confident projected shift: answer early
        elif silence >= cfg.vap_end_silence_ms and vap.p_now[AGENT] >= cfg.hold_threshold:
            reason = "vap_silence"  # not a projected hold, and the silence goes on
        if reason is None:
            return []
        self._turn_open = False
        info = {"reason": reason, "silence_ms": round(silence)}
        if vap is not None:
            info["p_shift"] = round(vap.p_now[AGENT], 3)
        if pw is not None:
            info["p_words"] = round(pw, 3)
        self._p_words = None
        return [TurnEvent(K.END_OF_TURN, frame.t, info)]
