"""What every session has: protocol plumbing, client input, audio intake.

`BaseSession` turns client messages into validated calls and audio into
16 kHz samples on the session's audio clock; subclasses decide what the
audio means (`duplex.session.Session`: the ASR -> LLM -> TTS cascade;
`duplex.flatten_session.FlattenSession`: one speech-text model).
"""
from __future__ import annotations

import enum
import itertools

import numpy as np

from . import PROTOCOL_VERSION
from .actions import Action, SendEvent
from .audio import StreamResampler, pcm16_to_float
from .config import Config
from .errors import ProtocolError
from .interfaces import INPUT_RATE
from .protocol import (check_audio_bytes, decode_audio_field, error_event, parse_event,
                       validate_session_update)


class State(str, enum.Enum):
    LISTENING = "listening"
    USER_SPEAKING = "user_speaking"
    THINKING = "thinking"
    SPEAKING = "speaking"


class BaseSession:
    def __init__(self, cfg: Config, session_id: str = "sess_1", models: dict | None = None):
        self.cfg, self.id = cfg, session_id
        self.models = models or {}
        self.instructions = cfg.session.instructions
        self.voice = cfg.tts.voice
        self.input_rate = INPUT_RATE
        self.output_rate = cfg.session.output_sample_rate
        self.state = State.LISTENING
        self._actions: list[Action] = []
        self._ids = itertools.count(1)  # event ids
        self._item_ids = itertools.count(1)
        self._resampler: StreamResampler | None = None
        self.samples_in = 0  # 16 kHz samples received
        self._last_recv = 0.0
        self.closed = False

    @property
    def busy(self) -> bool:
        """Whether the agent is responding (rates may not change then)."""
        return False

    # ------------------------------------------------------------ plumbing
    def drain(self) -> list[Action]:
        out, self._actions = self._actions, []
        return out

    def _send(self, type_: str, **fields) -> None:
        self._actions.append(SendEvent({"type": type_, "event_id": f"evt_{next(self._ids)}",
                                        **fields}))

    def _error(self, code: str, message: str, type_: str = "invalid_request_error",
               event_id: str | None = None) -> None:
        self._actions.append(SendEvent(error_event(code, message, type_=type_, event_id=event_id)))

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._item_ids)}"

    def _set_state(self, state: State) -> None:
        if state != self.state:
            self.state = state
            self._send("duplex.state", state=state.value)

    def wall_of(self, t_audio: float) -> float:
        """Driver time at which audio time `t_audio` arrived (real-time streaming assumed)."""
        return self._last_recv - (self.samples_in / INPUT_RATE - t_audio)

    @property
    def max_frame_bytes(self) -> int:
        return self.input_rate * 2 * self.cfg.session.max_frame_ms // 1000

    def session_info(self) -> dict:
        max_bytes = self.max_frame_bytes
        return {"id": self.id, "protocol": PROTOCOL_VERSION, "input_sample_rate": self.input_rate,
                "output_sample_rate": self.output_rate, "input_audio_format": "pcm16",
                "output_audio_format": "pcm16", "frame_ms": 20, "max_frame_bytes": max_bytes,
                "instructions": self.instructions, "voice": self.voice, "models": self.models}

    # ------------------------------------------------------------ client input
    def open(self, now: float) -> None:
        self._last_recv = now
        self._send("session.created", session=self.session_info())

    def receive_bytes(self, data: bytes, now: float) -> None:
        try:
            check_audio_bytes(data, self.max_frame_bytes)
        except ProtocolError as e:
            self._error(e.code, e.message)
            return
        self._ingest(pcm16_to_float(data), now)

    def receive_text(self, text: str, now: float) -> None:
        try:
            ev = parse_event(text)
            self._dispatch(ev, now)
        except ProtocolError as e:
            self._error(e.code, e.message, event_id=e.event_id)

    def _dispatch(self, ev: dict, now: float) -> None:
        kind, eid = ev["type"], ev.get("event_id")
        if kind == "session.update":
            upd = validate_session_update(ev["session"], eid)
            rates = {k: v for k, v in upd.items() if k.endswith("_rate")}
            changed = {k: v for k, v in rates.items() if getattr(self, k.replace("_sample", "")) != v}
            if changed and (self.samples_in or self.busy):
                raise ProtocolError("session_locked", "sample rates can only change before audio "
                                    "starts", event_id=eid)
            self.instructions = upd.get("instructions", self.instructions)
            self.voice = upd.get("voice", self.voice)
            self.input_rate = rates.get("input_sample_rate", self.input_rate)
            if "output_sample_rate" in rates:
                self.output_rate = rates["output_sample_rate"]
                self._output_rate_changed()
            self._send("session.updated", session=self.session_info())
        elif kind == "input_audio_buffer.append":
            data = decode_audio_field(ev)
            check_audio_bytes(data, self.max_frame_bytes)
            self._ingest(pcm16_to_float(data), now)
        else:
            self._on_client_event(kind, ev, now)

    def _output_rate_changed(self) -> None:
        """Hook: the client asked for another output rate (before any audio)."""

    def _on_client_event(self, kind: str, ev: dict, now: float) -> None:
        """Hook for the events that depend on the pipeline."""
        raise ProtocolError("unsupported_event", f"{kind} is not supported by this pipeline",
                            event_id=ev.get("event_id"))

    def _ingest(self, audio: np.ndarray, now: float) -> None:
        if self._resampler is None:
            self._resampler = StreamResampler(self.input_rate, INPUT_RATE)
        audio = self._resampler(audio)
        if audio.size == 0:
            return
        start = self.samples_in
        self.samples_in += audio.size
        self._last_recv = now
        self._on_audio(audio, start, now)

    def _on_audio(self, audio: np.ndarray, start: int, now: float) -> None:
        """Hook: `audio` (16 kHz) covers samples [start, start + len) of the session."""
        raise NotImplementedError

    def tick(self, now: float) -> None:
        """Timer: called every ~20 ms by the driver."""

    def close(self, now: float) -> None:
        self.closed = True
