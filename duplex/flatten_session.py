"""Session core for the end-to-end speech-text model (`session.pipeline = "flatten"`).

There is no ASR, LLM, TTS or turn-taker here: the model hears every 160 ms
chunk and answers every chunk with agent audio and text, so it decides by
itself when to speak, to stop or to keep quiet. The core only cuts the input
into chunks, streams the model's audio out as it comes (it is produced at
real time, so it needs no pacing), and frames the agent's speaking stretches
as protocol responses: a response starts with the first audible chunk and
ends after `END_QUIET_MS` of quiet.
"""
from __future__ import annotations

import numpy as np

from .actions import FlattenStep, SendAudio
from .audio import float_to_pcm16, rms_dbfs
from .config import Config
from .errors import ProtocolError
from .history import History, Item
from .interfaces import INPUT_RATE
from .session_base import BaseSession, State

END_QUIET_MS = 480  # this much quiet output ends an agent response
SPEAKING_DBFS = -45.0  # output louder than this counts as speech


class FlattenSession(BaseSession):
    def __init__(self, cfg: Config, session_id: str = "sess_1", models: dict | None = None):
        super().__init__(cfg, session_id, models)
        self.chunk = INPUT_RATE * cfg.flatten.chunk_ms // 1000
        self.history = History()
        self._pending: list[np.ndarray] = []
        self._pending_n = 0
        self._steps = 0
        self.response_id: str | None = None
        self.item_id: str | None = None
        self._text = ""
        self._quiet_ms = 0
        self._audio_ms = 0.0

    @property
    def busy(self) -> bool:
        return self.response_id is not None

    def _on_audio(self, audio: np.ndarray, start: int, now: float) -> None:
        self._pending.append(audio)
        self._pending_n += audio.size
        if self._pending_n < self.chunk:
            return
        buf = np.concatenate(self._pending)
        n = (buf.size // self.chunk) * self.chunk
        for i in range(0, n, self.chunk):
            self._actions.append(FlattenStep(self._steps, buf[i:i + self.chunk], self.output_rate))
            self._steps += 1
        rest = buf[n:]
        self._pending, self._pending_n = ([rest] if rest.size else []), rest.size

    def on_flatten_output(self, index: int, audio: np.ndarray, text: str, now: float) -> None:
        """The model's output for chunk `index`: agent audio (output rate) and a text delta."""
        chunk_ms = self.cfg.flatten.chunk_ms
        speaking = bool(text.strip()) or rms_dbfs(audio) > SPEAKING_DBFS
        if speaking and self.response_id is None:
            self.response_id, self.item_id = self._new_id("resp"), self._new_id("item")
            self._text, self._audio_ms = "", 0.0
            self._send("response.created", response={"id": self.response_id,
                                                     "status": "in_progress"})
            self._send("output_audio_buffer.started", response_id=self.response_id,
                       item_id=self.item_id)
            self._set_state(State.SPEAKING)
        if self.response_id is None:
            return
        if text:
            self._text += text
            self._send("response.output_audio_transcript.delta", response_id=self.response_id,
                       item_id=self.item_id, delta=text)
        if audio.size:
            self._actions.append(SendAudio(float_to_pcm16(audio), self.response_id))
            self._audio_ms += audio.size * 1000 / self.output_rate
        self._quiet_ms = 0 if speaking else self._quiet_ms + chunk_ms
        if self._quiet_ms >= END_QUIET_MS:
            self._end_response("completed")

    def on_flatten_error(self, index: int, message: str, now: float) -> None:
        self._error("model_failed", f"the speech-text model failed: {message}", "model_error")
        if self.response_id is not None:
            self._end_response("failed")

    def _end_response(self, status: str) -> None:
        rid, item = self.response_id, self.item_id
        text = self._text.strip()
        self._send("response.output_audio.done", response_id=rid, item_id=item,
                   audio_ms=int(self._audio_ms))
        self._send("output_audio_buffer.stopped", response_id=rid, item_id=item)
        self._send("response.output_audio_transcript.done", response_id=rid, item_id=item,
                   transcript=text)
        if text:
            self.history.add(Item(item, "assistant", text, interrupted=status != "completed"))
        self._send("response.done", response={"id": rid, "status": status, "status_details": {
            "reason": None}, "output": [{"id": item, "role": "assistant", "transcript": text}]})
        self.response_id = self.item_id = None
        self._set_state(State.LISTENING)

    def _on_client_event(self, kind: str, ev: dict, now: float) -> None:
        if kind in ("output_audio_buffer.playback", "conversation.item.truncate"):
            return  # the model hears what was played through its own input
        raise ProtocolError("unsupported_event", f"{kind} is not supported by the flatten "
                            "pipeline (the model decides when to speak)", event_id=ev.get("event_id"))
