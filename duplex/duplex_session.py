"""Session core for time-sliced duplex decoding (`llm.engine = "tdm"`).

The duplex LLM (REFERENCE §3) is run every tick: the words recognised since
the last tick go in as the user's slice, and the model answers with up to K
tokens, `<idle>` or `<eos>`. In `duplex` mode it decides by itself when to
speak, keep quiet or stop; ticks come every `llm.slice_s` of audio and
early when the user goes silent. In `turn` mode the turn-taker decides: the
tick at the end of the user's turn starts the answer and the model is
stepped until `<eos>`.

Speech over the agent that the turn-taker calls an interruption stops the
audio at once (as in the cascade). Whoever stops the agent, the model is
told what was heard: the unheard tail of its text is rolled back.
"""
from __future__ import annotations

from .actions import AsrFinish, DuplexRollback, DuplexTick
from .config import Config
from .errors import ProtocolError
from .interfaces import INPUT_RATE
from .session import Session, State
from .turn import TurnEvent, TurnEventKind as K, TurnTaker


def heard_chars(text: str, heard: str) -> int:
    """Characters of `text` covered by `heard` (its first words, re-spaced)."""
    n_words, pos = len(heard.split()), 0
    for _ in range(n_words):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        while pos < len(text) and not text[pos].isspace():
            pos += 1
    return pos


class DuplexSession(Session):
    def __init__(self, cfg: Config, turn_taker: TurnTaker, session_id: str = "sess_1",
                 models: dict | None = None):
        super().__init__(cfg, turn_taker, session_id, models)
        self.mode = cfg.llm.mode
        if self.mode not in ("duplex", "turn"):
            raise ValueError(f"llm.mode must be duplex or turn, not {self.mode!r}")
        self._seq = 0
        self._inflight = False
        self._next_tick = cfg.llm.slice_s
        self._wanted = False  # a tick is due as soon as the one in flight returns
        self._eot_pending = False  # the next tick tells the model the user's turn ended
        self._items: list[str] = []  # user items in order
        self._texts: dict[str, str] = {}  # latest hypothesis per item
        self._sent: dict[str, int] = {}  # words of each item already given to the model

    # ------------------------------------------------------------ user words
    def on_asr_partial(self, item_id: str, text: str, now: float) -> None:
        if item_id in self._partials:
            self._texts[item_id] = text
        super().on_asr_partial(item_id, text, now)

    def on_asr_final(self, item_id: str, text: str, now: float) -> None:
        if item_id in self._partials:
            self._texts[item_id] = text.strip()
        super().on_asr_final(item_id, text, now)  # no item is awaited here: no Respond

    def _start_user_item(self, onset: float) -> None:
        super()._start_user_item(onset)
        self._items.append(self.user_item)
        for old in self._items[:-8]:  # the model has long had these words
            self._texts.pop(old, None)
            self._sent.pop(old, None)
        self._items = self._items[-8:]

    def _new_words(self) -> str | None:
        out = []
        for item in self._items:
            words = self._texts.get(item, "").split()
            sent = self._sent.get(item, 0)
            if len(words) > sent:
                out += words[sent:]
                self._sent[item] = len(words)
        return " ".join(out) or None

    # ------------------------------------------------------------ turn events
    def _on_turn_event(self, ev: TurnEvent, now: float) -> None:
        if ev.kind == K.SPEECH_START:
            if self.user_item is None:
                self._start_user_item(ev.t)
            self._send("input_audio_buffer.speech_started", item_id=self.user_item,
                       audio_start_ms=int(round(ev.t * 1000)))
            if self.response is None:
                self._set_state(State.USER_SPEAKING)
        elif ev.kind == K.SPEECH_END:
            item, self.user_item = self.user_item, None
            self._times.user_end = self.wall_of(ev.t)
            self._send("input_audio_buffer.speech_stopped", item_id=item,
                       audio_end_ms=int(round(ev.t * 1000)))
            if item in self._asr_live:  # words become final at each pause
                self._asr_live.discard(item)
                self._actions.append(AsrFinish(item))
        elif ev.kind == K.END_OF_TURN:
            self._times.end_of_turn = now
            self._send("input_audio_buffer.committed", item_id=self._items[-1] if self._items
                       else None, reason=ev.info.get("reason", "turn_taker"))
            if self.response is None:
                self._set_state(State.THINKING)
            self._eot_pending = self.mode == "turn"
            self._want_tick(now)
        else:
            super()._on_turn_event(ev, now)

    # ------------------------------------------------------------ ticks
    def tick(self, now: float) -> None:
        super().tick(now)
        if self.mode == "duplex" and self.samples_in / INPUT_RATE >= self._next_tick:
            self._want_tick(now)

    def _want_tick(self, now: float) -> None:
        if self._inflight:
            self._wanted = True
            return
        self._wanted = False
        self._inflight = True
        self._next_tick = self.samples_in / INPUT_RATE + self.cfg.llm.slice_s
        self._seq += 1
        eot, self._eot_pending = self._eot_pending, False
        self._actions.append(DuplexTick(self._seq, self._new_words(), eot, self.instructions))

    def on_tick_result(self, seq: int, text: str, state: str, now: float) -> None:
        self._inflight = False
        r = self.response
        if text:
            if r is None:
                r = self._open_response(now)
            self.on_llm_delta(r.gen, text, now)
        if r is not None and not r.llm_done:
            if state == "eos":
                self.on_llm_done(r.gen, now)
            elif state == "idle" and r.text:
                if self.tt.user_speaking:  # the model yields the floor to the user
                    self._stop_response(now, reason="model_yielded")
                else:
                    self.on_llm_done(r.gen, now)
            elif self.mode == "turn":
                self._wanted = True  # keep answering until <eos>
        if self._wanted:
            self._want_tick(now)
        if r is None and self.state == State.THINKING and state != "speak":
            self._set_state(State.LISTENING)

    def on_tick_error(self, seq: int, message: str, now: float) -> None:
        self._inflight = False
        self._error("llm_failed", f"the duplex language model failed: {message}", "model_error")
        if self.response is not None:
            self._stop_response(now, reason="error", status="failed")

    def _stop_response(self, now: float, reason: str, onset: float | None = None,
                       status: str = "cancelled") -> str | None:
        r = self.response
        heard = super()._stop_response(now, reason, onset, status)
        if r is not None:
            unspoken = len(r.text) - heard_chars(r.text, heard)
            if unspoken > 0:
                self._actions.append(DuplexRollback(unspoken))
        return heard

    def _on_client_event(self, kind: str, ev: dict, now: float) -> None:
        # the model answers on ticks: a client's commit or response request asks for one now
        if kind == "input_audio_buffer.commit":
            if not self._items:
                raise ProtocolError("input_audio_buffer_commit_empty", "no user speech to commit",
                                    event_id=ev.get("event_id"))
            self._on_turn_event(TurnEvent(K.END_OF_TURN, now, {"reason": "commit"}), now)
        elif kind == "response.create":
            if self.response is None:
                self._eot_pending = self.mode == "turn"
                self._want_tick(now)
        else:
            super()._on_client_event(kind, ev, now)
