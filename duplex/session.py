"""The per-connection session state machine (sans-I/O).

Inputs are method calls carrying the driver's clock (`now`, seconds): client
messages, perception frames, ASR/LLM/TTS results and timer ticks. Outputs are
`duplex.actions` collected with `drain()`. The same core runs under the
asyncio server and under the virtual-clock benchmark driver.

States: listening -> user_speaking -> thinking -> speaking -> listening;
speaking -> user_speaking on barge-in.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from .actions import (AsrCancel, AsrFeed, AsrFinish, AsrStart, Cancel, Perceive, Respond, SendAudio,
                      Synthesize)
from .audio import float_to_pcm16
from .config import Config
from .errors import ProtocolError
from .history import History, Item
from .interfaces import FRAME_SAMPLES, INPUT_RATE
from .playout import Playout, Segment
from .protocol import item_text
from .session_base import BaseSession, State
from .response import Response, TurnTimes
from .turn import Frame, TurnEvent, TurnEventKind as K, TurnTaker

PREROLL_S = 0.3  # audio before the detected onset that ASR also gets
RING_S = 2.0
PARTIAL_INTERVAL_S = 0.15  # at most this often a partial transcript event


class Session(BaseSession):
    """The cascade: turn-taking decides, ASR -> LLM -> TTS answers."""

    def __init__(self, cfg: Config, turn_taker: TurnTaker, session_id: str = "sess_1",
                 models: dict | None = None):
        super().__init__(cfg, session_id, models)
        self.tt = turn_taker
        self.history = History()
        self.playout = Playout(self.output_rate, cfg.session.playout_lead_ms)
        self._last_partial = -1.0
        self._ring: deque[tuple[int, np.ndarray]] = deque()
        self.gen = 0
        self.response: Response | None = None
        self.user_item: str | None = None  # user item being recognised
        self._asr_live: set[str] = set()
        self._awaiting: str | None = None  # user item whose final transcript starts a response
        self._times = TurnTimes()
        self._partials: dict[str, str] = {}
        self._truncatable: dict[str, tuple[list[Segment], int]] = {}
        self._next_turn_event = 0.0

    # ------------------------------------------------------------ client input
    @property
    def busy(self) -> bool:
        return self.response is not None

    def _output_rate_changed(self) -> None:
        self.playout = Playout(self.output_rate, self.cfg.session.playout_lead_ms)

    def _on_client_event(self, kind: str, ev: dict, now: float) -> None:
        eid = ev.get("event_id")
        if kind == "output_audio_buffer.playback":
            r = self.response
            if r is not None and ev.get("response_id", r.id) == r.id:
                self.playout.report(ev["played_ms"] * self.output_rate / 1000, now)
                self._pump(now)
        elif kind == "input_audio_buffer.commit":
            if self.user_item is None:
                raise ProtocolError("input_audio_buffer_commit_empty",
                                    "no user speech to commit", event_id=eid)
            self._end_of_turn(now, reason="commit")
        elif kind == "conversation.item.create":
            item = self.history.add(Item(self._new_id("item"), "user", item_text(ev["item"])))
            self._send("conversation.item.created",
                       item={"id": item.id, "role": "user", "type": "message",
                             "content": [{"type": "input_text", "text": item.text}]})
        elif kind == "response.create":
            if self.response is None:
                self._awaiting = None
                self._times = TurnTimes()
                self._start_response(now)
        elif kind == "response.cancel":
            self._stop_response(now, reason="client_cancelled")
        elif kind == "conversation.item.truncate":
            self._truncate(ev["item_id"], float(ev["audio_end_ms"]), eid)

    def _on_audio(self, audio: np.ndarray, start: int, now: float) -> None:
        self._ring.append((start, audio))
        oldest = self.samples_in - RING_S * INPUT_RATE
        while self._ring and self._ring[0][0] + self._ring[0][1].size < oldest:
            self._ring.popleft()
        if self.user_item in self._asr_live:
            self._actions.append(AsrFeed(self.user_item, audio))
        first, last = start // FRAME_SAMPLES, self.samples_in // FRAME_SAMPLES
        # The agent holds the floor from its first audio until the response ends
        # (pauses and TTS underruns included): that is what overlap means here.
        agent = self.response is not None and self.response.audio_started
        self._actions.append(Perceive(audio, first, [agent] * (last - first)))

    # ------------------------------------------------------------ perception
    def on_frames(self, frames: list[Frame], now: float) -> None:
        for frame in frames:
            for event in self.tt.update(frame):
                self._on_turn_event(event, now)
            if self.cfg.session.send_vap and frame.t >= self._next_turn_event:
                self._next_turn_event = frame.t + self.cfg.session.vap_event_interval_ms / 1000
                fields = {"audio_ms": int(round(frame.t * 1000)), "p_user": round(frame.p_user, 3),
                          "state": self.state.value}
                if frame.vap is not None:
                    fields["p_shift"] = round(frame.vap.p_now[1], 3)
                    fields["p_shift_future"] = round(frame.vap.p_future[1], 3)
                self._send("duplex.turn", **fields)
        self._pump(now)

    def _on_turn_event(self, ev: TurnEvent, now: float) -> None:
        ms = int(round(ev.t * 1000))
        if ev.kind == K.SPEECH_START:
            if self.user_item is None:
                self._start_user_item(ev.t)
            self._send("input_audio_buffer.speech_started", item_id=self.user_item,
                       audio_start_ms=ms)
            if self.response is not None and not self.response.audio_started:
                # The user went on before the agent said anything: drop the answer.
                # Once the agent is audible only the policy's INTERRUPT stops it.
                self._stop_response(now, reason="turn_continued", onset=ev.t)
            elif self.response is None:
                self._stop_response(now, reason="turn_continued")
            if self.response is None:
                self._set_state(State.USER_SPEAKING)
        elif ev.kind == K.SPEECH_END:
            self._times.user_end = self.wall_of(ev.t)
            self._send("input_audio_buffer.speech_stopped", item_id=self.user_item, audio_end_ms=ms)
        elif ev.kind == K.END_OF_TURN:
            if self.user_item is not None and self.response is None:
                self._end_of_turn(now, reason=ev.info.get("reason", "turn_taker"))
        elif ev.kind == K.INTERRUPT:
            if self.user_item is None:
                self._start_user_item(ev.t)
            if self.response is not None:
                self._stop_response(now, reason="interrupted", onset=ev.t)
            self._set_state(State.USER_SPEAKING)
        elif ev.kind == K.BACKCHANNEL:
            if self.user_item is not None and self.response is not None:
                self._drop_user_item()  # "mm-hm" over the agent: not a turn
            self._send("duplex.backchannel", kind="user", audio_ms=ms)
        elif ev.kind == K.BACKCHANNEL_OPPORTUNITY:
            self._send("duplex.backchannel", kind="opportunity", audio_ms=ms)
        elif ev.kind == K.PAUSE_AGENT and self.response and self.response.audio_started:
            self.playout.pause(now)
            self._send("output_audio_buffer.paused", response_id=self.response.id)
        elif ev.kind == K.RESUME_AGENT and self.response and self.playout.paused:
            self.playout.resume(now)
            self._send("output_audio_buffer.resumed", response_id=self.response.id)

    def _start_user_item(self, onset: float) -> None:
        self.user_item = self._new_id("item")
        self._asr_live.add(self.user_item)
        self._partials[self.user_item] = ""
        self._actions.append(AsrStart(self.user_item))
        first = max(0, int((onset - PREROLL_S) * INPUT_RATE))
        pre = [a[max(0, first - s):] for s, a in self._ring if s + a.size > first]
        if pre:
            self._actions.append(AsrFeed(self.user_item, np.concatenate(pre)))

    def _drop_user_item(self) -> None:
        item, self.user_item = self.user_item, None
        if item in self._asr_live:
            self._asr_live.discard(item)
            self._actions.append(AsrCancel(item))

    def _end_of_turn(self, now: float, reason: str) -> None:
        item, self.user_item = self.user_item, None
        self._times.end_of_turn = now
        if self._times.user_end is None:
            self._times.user_end = now
        self._awaiting = item
        self._send("input_audio_buffer.committed", item_id=item, reason=reason)
        self._set_state(State.THINKING)
        if item in self._asr_live:
            self._asr_live.discard(item)
            self._actions.append(AsrFinish(item))

    # ------------------------------------------------------------ ASR results
    def on_asr_partial(self, item_id: str, text: str, now: float) -> None:
        if item_id == self.user_item:
            self.tt.hear(text)  # every partial: the turn-taker judges the words so far
        old = self._partials.get(item_id)
        if old is None or text == old or now - self._last_partial < PARTIAL_INTERVAL_S:
            return  # unchanged, cancelled, or too soon: the final will follow anyway
        self._last_partial = now
        self._partials[item_id] = text
        delta = text[len(old):] if text.startswith(old) else text
        self._send("conversation.item.input_audio_transcription.delta", item_id=item_id,
                   delta=delta, transcript=text)

    def on_asr_final(self, item_id: str, text: str, now: float) -> None:
        if self._partials.pop(item_id, None) is None:
            return  # cancelled item
        text = text.strip()
        self._send("conversation.item.input_audio_transcription.completed", item_id=item_id,
                   transcript=text)
        if text:
            self.history.add(Item(item_id, "user", text))
        if item_id != self._awaiting:
            return
        self._awaiting = None
        self._times.asr_final = now
        if text and self.response is None and self.state == State.THINKING:
            self._start_response(now)
        elif self.state == State.THINKING:
            self._set_state(State.LISTENING)

    def on_asr_error(self, item_id: str, message: str, now: float) -> None:
        self._asr_live.discard(item_id)
        if self._partials.pop(item_id, None) is None:
            return
        self._send("conversation.item.input_audio_transcription.failed", item_id=item_id,
                   error={"type": "model_error", "code": "asr_failed", "message": message})
        self._error("asr_failed", f"speech recognition failed: {message}", "model_error")
        if item_id == self._awaiting:
            self._awaiting = None
            self._set_state(State.LISTENING)

    # ------------------------------------------------------------ responses
    def _open_response(self, now: float) -> Response:
        """A new response, announced; its text comes from the LLM (or a duplex tick)."""
        self.gen += 1
        r = Response(self.gen, self._new_id("resp"), self._new_id("item"),
                     self.cfg.tts.first_chunk_words, times=self._times)
        self._times = TurnTimes()
        self.response = r
        self.playout.reset(now)
        self._send("response.created", response={"id": r.id, "status": "in_progress"})
        self._set_state(State.THINKING)
        return r

    def _start_response(self, now: float) -> None:
        r = self._open_response(now)
        messages = self.history.messages(self.instructions, self.cfg.llm.history_turns)
        self._actions.append(Respond(r.gen, r.id, messages))

    def _current(self, gen: int) -> Response | None:
        r = self.response
        return r if r is not None and r.gen == gen else None

    def on_llm_delta(self, gen: int, delta: str, now: float) -> None:
        r = self._current(gen)
        if r is None or not delta:
            return
        if r.times.first_token is None:
            r.times.first_token = now
        r.text += delta
        self._send("response.output_audio_transcript.delta", response_id=r.id, item_id=r.item_id,
                   delta=delta)
        for sentence in r.chunker.push(delta):
            self._synthesize(r, sentence)

    def on_llm_done(self, gen: int, now: float) -> None:
        r = self._current(gen)
        if r is None:
            return
        for sentence in r.chunker.flush():
            self._synthesize(r, sentence)
        r.llm_done = True
        self._check_done(now)

    def on_llm_error(self, gen: int, message: str, now: float) -> None:
        if self._current(gen) is None:
            return
        self._error("llm_failed", f"the language model failed: {message}", "model_error")
        self._stop_response(now, reason="error", status="failed")

    def _synthesize(self, r: Response, text: str) -> None:
        r.sentences.append(text)
        self._actions.append(Synthesize(r.gen, len(r.sentences) - 1, text, self.voice,
                                        self.output_rate))

    def on_tts_audio(self, gen: int, seq: int, audio: np.ndarray, now: float) -> None:
        r = self._current(gen)
        if r is None or audio.size == 0 or not 0 <= seq < len(r.sentences):
            return
        if r.times.first_audio_ready is None:
            r.times.first_audio_ready = now
        self.playout.add(audio, seq, r.sentences[seq])
        if not r.audio_started:
            r.audio_started = True
            self._send("output_audio_buffer.started", response_id=r.id, item_id=r.item_id)
            self._set_state(State.SPEAKING)
        self._pump(now)

    def on_tts_done(self, gen: int, seq: int, now: float) -> None:
        r = self._current(gen)
        if r is not None:
            r.tts_done += 1
            self._check_done(now)

    def on_tts_error(self, gen: int, seq: int, message: str, now: float) -> None:
        if self._current(gen) is not None:
            self._error("tts_failed", f"speech synthesis failed: {message}", "model_error")
            self.on_tts_done(gen, seq, now)  # skip the sentence, keep the response going

    def tick(self, now: float) -> None:
        self._pump(now)

    def _pump(self, now: float) -> None:
        r = self.response
        if r is None:
            return
        for piece in self.playout.release(now):
            self._actions.append(SendAudio(float_to_pcm16(piece), r.id))
            if r.times.first_audio_sent is None:
                r.times.first_audio_sent = now
                self._send("duplex.metrics", kind="turn", response_id=r.id,
                           latency_ms=r.times.latency_ms())
        self._check_done(now)

    def _check_done(self, now: float) -> None:
        r = self.response
        if r is None or not r.all_synthesized or self.playout.unsent:
            return
        if not r.audio_done_sent:
            r.audio_done_sent = True
            if r.audio_started:
                self._send("response.output_audio.done", response_id=r.id, item_id=r.item_id,
                           audio_ms=int(self.playout.total * 1000 / self.output_rate))
        self.playout.advance(now)
        if self.playout.drained():
            self._finish(r, "completed", None, r.text.strip())

    def _finish(self, r: Response, status: str, reason: str | None, heard: str) -> None:
        if r.audio_started:
            self._send("output_audio_buffer.stopped", response_id=r.id, item_id=r.item_id)
        self._send("response.output_audio_transcript.done", response_id=r.id, item_id=r.item_id,
                   transcript=r.text.strip())
        if r.audio_started or status == "completed":
            self.history.add(Item(r.item_id, "assistant", heard, interrupted=status != "completed",
                                  full_text=r.text.strip()))
            self._truncatable[r.item_id] = (list(self.playout.segments), self.playout.total)
            while len(self._truncatable) > 8:
                self._truncatable.pop(next(iter(self._truncatable)))
        output = [{"id": r.item_id, "role": "assistant", "transcript": heard}]
        self._send("response.done", response={"id": r.id, "status": status,
                                              "status_details": {"reason": reason},
                                              "output": output})
        self.response = None
        self.playout.reset(self._last_recv)
        if self.state != State.USER_SPEAKING:
            self._set_state(State.USER_SPEAKING if self.user_item else State.LISTENING)

    def _stop_response(self, now: float, reason: str, onset: float | None = None,
                       status: str = "cancelled") -> str | None:
        """Barge-in, cancel or failure: stop all work of the response at once.
        Returns the text the user heard (None when nothing was responding)."""
        r = self.response
        if r is None:
            if self._awaiting is not None and reason != "error":
                self._awaiting = None  # the user went on talking before the transcript came
            return None
        self._actions.append(Cancel(r.gen))
        self.playout.advance(now)
        heard = self.playout.heard_text() if r.audio_started else ""
        if r.audio_started:
            self._send("response.interrupted", response_id=r.id, item_id=r.item_id,
                       audio_start_ms=None if onset is None else int(round(onset * 1000)),
                       played_ms=self.playout.played_ms(), reason=reason)
            self._send("conversation.item.truncated", item_id=r.item_id, content_index=0,
                       audio_end_ms=self.playout.played_ms(), transcript=heard)
            if onset is not None:
                self._send("duplex.metrics", kind="interruption", response_id=r.id,
                           stop_latency_ms=int(round((now - self.wall_of(onset)) * 1000)))
        self.playout.sent = int(self.playout.played)  # nothing more plays
        self._finish(r, status, reason, heard)
        return heard

    def _truncate(self, item_id: str, audio_end_ms: float, eid: str | None) -> None:
        item = self.history.get(item_id)
        if item is None or item.role != "assistant" or item_id not in self._truncatable:
            raise ProtocolError("item_not_found", f"no assistant audio item {item_id!r} to "
                                "truncate", event_id=eid)
        segments, total = self._truncatable[item_id]
        played = min(total, audio_end_ms * self.output_rate / 1000)
        probe = Playout(self.output_rate)
        probe.segments = segments
        item.text = probe.heard_text(played)
        item.interrupted = played < total
        self._send("conversation.item.truncated", item_id=item_id, content_index=0,
                   audio_end_ms=int(round(played * 1000 / self.output_rate)), transcript=item.text)

    def close(self, now: float) -> None:
        """The connection is gone: cancel everything still running."""
        if self.closed:
            return
        self.closed = True
        if self.response is not None:
            self._actions.append(Cancel(self.response.gen))
        for item in list(self._asr_live):
            self._actions.append(AsrCancel(item))
        self._asr_live.clear()
