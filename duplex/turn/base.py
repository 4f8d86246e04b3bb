"""The TurnTaker interface and the per-frame observation it consumes.

Speaker indices follow VAP: 0 is the user (the microphone channel), 1 is the
agent (its own output). A TurnTaker is pure logic: the model outputs it needs
(VAD probability, VAP projections) arrive inside each `Frame`, computed by
the perception worker, so policies run unchanged on a virtual clock.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

USER, AGENT = 0, 1


@dataclass(frozen=True)
class VapOutput:
    """Voice-activity-projection probabilities for one frame (M1).

    p_now[k] / p_future[k]: probability that speaker k is the one speaking in
    the near (0-0.6 s) / far (0.6-2 s) future, normalised over the two
    speakers. p_va[k]: the model's estimate that k is speaking in this frame.
    """

    p_now: tuple[float, float]
    p_future: tuple[float, float]
    p_va: tuple[float, float] = (0.0, 0.0)
    # Probability that the current user sound is a short backchannel rather
    # than the start of a turn (when the model provides it).
    p_backchannel: float | None = None
    # p_bc[k]: probability that speaker k's coming or current sound is a short
    # backchannel while the other keeps the floor (p_bc[1] high = a moment for
    # the agent to say "mm-hm"); p_backchannel is p_bc[0].
    p_bc: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class Frame:
    """One 20 ms frame of the session's audio clock.

    t: end time of the frame in seconds on the input-audio clock.
    p_user: speech probability of the user's channel (VAD).
    agent_active: whether the agent's audio was audible to the user during
      the frame (from the playback schedule).
    vap: projections, when a VAP model runs.
    """

    t: float
    p_user: float
    agent_active: bool = False
    vap: VapOutput | None = None


class TurnEventKind(str, enum.Enum):
    SPEECH_START = "speech_start"  # user speech confirmed; t = its onset
    SPEECH_END = "speech_end"  # user went silent; t = end of the last voiced frame
    END_OF_TURN = "end_of_turn"  # take the floor now
    INTERRUPT = "interrupt"  # user barges in while the agent speaks: stop
    PAUSE_AGENT = "pause_agent"  # overlap of unknown kind: hold agent audio
    RESUME_AGENT = "resume_agent"  # it was a backchannel after all: carry on
    BACKCHANNEL = "backchannel"  # user said "mm-hm" while the agent spoke
    BACKCHANNEL_OPPORTUNITY = "backchannel_opportunity"  # agent may say "mm-hm"


@dataclass(frozen=True)
class TurnEvent:
    kind: TurnEventKind
    t: float  # audio-clock time the event refers to (seconds)
    info: dict = field(default_factory=dict)  # e.g. probabilities, reason


@runtime_checkable
class TurnTaker(Protocol):
    """Consumes frames in order; returns the turn events each frame causes."""

    name: str

    def update(self, frame: Frame) -> list[TurnEvent]: ...

    def reset(self) -> None: ...

    def hear(self, text: str) -> None:
        """The user's current turn as recognised so far (policies may ignore it)."""

    @property
    def user_speaking(self) -> bool: ...
