"""What the session core asks its driver to do.

The core never performs I/O; it returns these. Model work carries the
generation (`gen`) or item it belongs to, and results come back tagged the
same way, so the core can drop what a cancelled turn produced late.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class SendEvent:
    event: dict


@dataclass
class SendAudio:
    pcm: bytes = field(repr=False)  # PCM16LE at the session's output rate
    response_id: str = ""


@dataclass
class Perceive:
    """Run VAD (and VAP) over 16 kHz audio; `agent_active` is per completed 20 ms frame."""

    audio: np.ndarray = field(repr=False)
    first_frame: int = 0  # index of the first frame this chunk completes
    agent_active: list[bool] = field(default_factory=list)


@dataclass
class AsrStart:
    item_id: str


@dataclass
class AsrFeed:
    item_id: str
    audio: np.ndarray = field(repr=False)  # 16 kHz


@dataclass
class AsrFinish:
    item_id: str


@dataclass
class AsrCancel:
    item_id: str


@dataclass
class Respond:
    gen: int
    response_id: str
    messages: list[dict]


@dataclass
class Synthesize:
    gen: int
    seq: int
    text: str
    voice: str | None
    rate: int  # resample the audio to this rate


@dataclass
class Cancel:
    """Stop every LLM/TTS job of generation `gen` and drop its queued work."""

    gen: int


@dataclass
class Close:
    code: int
    reason: str




@dataclass
class FlattenStep:
    """Feed one chunk of user audio (16 kHz) to the speech-text model; its agent
    audio must come back resampled to `rate`."""

    index: int
    audio: np.ndarray = field(repr=False)
    rate: int = 24_000


@dataclass
class DuplexTick:
    """One tick of the time-sliced duplex LLM: append the user's slice (None = <idle>)
    and decode the assistant's slice. Ticks of a session run in order."""

    seq: int
    user_text: str | None
    end_of_turn: bool = False
    instructions: str = ""  # the system prompt, used when the model's session opens


@dataclass
class DuplexRollback:
    """The last `unspoken_chars` characters of the assistant's text were never heard."""

    unspoken_chars: int


Action = (SendEvent | SendAudio | Perceive | AsrStart | AsrFeed | AsrFinish | AsrCancel | Respond
          | Synthesize | Cancel | Close | FlattenStep | DuplexTick | DuplexRollback)
