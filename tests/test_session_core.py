"""The session state machine, driven directly: frames in, actions out.

Perception results (speech probabilities) are the core's input, so here they
are written out by hand, frame by frame; ASR, LLM and TTS results too. The
model-backed runs are in test_server_*.py.
"""
import json

import numpy as np
import pytest

from duplex import actions as A
from duplex.config import load_config
from duplex.session import Session, State
from duplex.turn import Frame
from duplex.turn.vad_policy import VADPolicy

RATE = 24_000


class Drive:
    """Plays the driver: sends 20 ms of audio, answers Perceive with given probabilities."""

    def __init__(self, policy=None, **turn):
        self.cfg = load_config("test", sets=[f"turn.{k}={v}" for k, v in turn.items()])
        self.s = Session(self.cfg, policy(self.cfg) if policy else VADPolicy(self.cfg.turn, self.cfg.vad))
        self.now = 0.0
        self.actions: list = []
        self.events: list[dict] = []
        self.audio_after: dict[str, int] = {}
        self.s.open(self.now)
        self._collect()

    def _collect(self):
        for a in self.s.drain():
            self.actions.append(a)
            if isinstance(a, A.SendEvent):
                self.events.append(a.event)
            if isinstance(a, A.Perceive):
                frames = [Frame((a.first_frame + k + 1) * 0.02, self.p, agent)
                          for k, agent in enumerate(a.agent_active)]
                self.s.on_frames(frames, self.now)
                self._collect()

    def speech(self, seconds: float, p: float = 0.95):
        self.p = p
        for _ in range(int(round(seconds / 0.02))):
            self.now += 0.02
            self.s.receive_bytes(b"\0\0" * 320, self.now)
            self._collect()
            self.s.tick(self.now)
            self._collect()

    def silence(self, seconds: float):
        self.speech(seconds, p=0.01)

    def types(self):
        return [e["type"] for e in self.events]

    def last(self, cls):
        return [a for a in self.actions if isinstance(a, cls)][-1]

    def answer_user(self, transcript: str = "what is the weather like"):
        """ASR final for the committed item, then the LLM speaks one sentence with audio."""
        item = self.last(A.AsrFinish).item_id
        self.s.on_asr_final(item, transcript, self.now)
        self._collect()
        respond = self.last(A.Respond)
        self.s.on_llm_delta(respond.gen, "It is sunny in Paris today. ", self.now)
        self.s.on_llm_delta(respond.gen, "Take a hat with you.", self.now)
        self.s.on_llm_done(respond.gen, self.now)
        self._collect()
        for synth in [a for a in self.actions if isinstance(a, A.Synthesize)
                      and a.gen == respond.gen]:
            self.s.on_tts_audio(respond.gen, synth.seq, np.full(RATE, 0.1, np.float32), self.now)
            self.s.on_tts_done(respond.gen, synth.seq, self.now)
        self._collect()
        return respond


def test_a_user_turn_gets_an_answer_and_the_history_holds_both():
    d = Drive(end_silence_ms=500)
    d.silence(0.3)
    d.speech(1.0)
    assert d.s.state == State.USER_SPEAKING
    d.silence(0.3)
    assert "input_audio_buffer.committed" not in d.types()  # a pause is not the end
    d.silence(0.3)
    assert "input_audio_buffer.committed" in d.types()
    assert d.s.state == State.THINKING
    respond = d.answer_user()
    assert respond.messages[-1] == {"role": "user", "content": "what is the weather like"}
    d.silence(3.0)  # two 1 s sentences play out
    t = d.types()
    for expected in ["output_audio_buffer.started", "response.output_audio.done",
                     "output_audio_buffer.stopped", "response.done"]:
        assert expected in t
    done = [e for e in d.events if e["type"] == "response.done"][-1]
    assert done["response"]["status"] == "completed"
    assert [(i.role, i.text) for i in d.s.history.items] == [
        ("user", "what is the weather like"),
        ("assistant", "It is sunny in Paris today. Take a hat with you.")]
    metrics = [e for e in d.events if e["type"] == "duplex.metrics"][0]
    assert metrics["latency_ms"]["endpointing"] == 500
    assert d.s.state == State.LISTENING


def test_audio_is_paced_at_real_time_plus_the_lead():
    d = Drive()
    d.speech(0.6)
    d.silence(0.6)
    d.answer_user()
    sent = sum(len(a.pcm) // 2 for a in d.actions if isinstance(a, A.SendAudio))
    lead = RATE * d.cfg.session.playout_lead_ms // 1000
    assert sent <= lead + RATE * 0.04  # not the whole 2 s at once
    d.silence(0.5)
    sent = sum(len(a.pcm) // 2 for a in d.actions if isinstance(a, A.SendAudio))
    assert abs(sent - (0.5 * RATE + lead)) <= RATE * 0.05


def test_barge_in_stops_audio_and_keeps_only_the_heard_words():
    d = Drive(min_speech_ms=200, interrupt_min_ms=200)
    d.speech(0.6)
    d.silence(0.6)
    respond = d.answer_user()
    d.silence(1.0)  # 1 s of the agent's 2 s played: the first sentence
    n_audio = len([a for a in d.actions if isinstance(a, A.SendAudio)])
    d.speech(0.4)
    t = d.types()
    assert "response.interrupted" in t
    assert A.Cancel(respond.gen) in d.actions
    interrupted = [e for e in d.events if e["type"] == "response.interrupted"][0]
    assert 1000 <= interrupted["played_ms"] <= 1300
    heard = d.s.history.items[-1]
    assert heard.role == "assistant" and heard.interrupted
    assert heard.text.startswith("It is sunny") and "hat" not in heard.text
    audio_after = [a for a in d.actions[d.actions.index(A.Cancel(respond.gen)):]
                   if isinstance(a, A.SendAudio)]
    assert audio_after == [] and n_audio > 0
    # Late results of the cancelled generation are dropped by the core.
    before = len(d.events)
    d.s.on_llm_delta(respond.gen, "late words", d.now)
    d.s.on_tts_audio(respond.gen, 1, np.ones(RATE, np.float32), d.now)
    assert d.s.drain() == [] and len(d.events) == before
    stop = [e for e in d.events if e.get("kind") == "interruption"][0]
    assert stop["stop_latency_ms"] >= 200  # it waited for min speech, no longer
    assert stop["stop_latency_ms"] <= 260


def test_a_short_burst_over_the_agent_does_not_interrupt():
    d = Drive(min_speech_ms=200, interrupt_min_ms=200)
    d.speech(0.6)
    d.silence(0.6)
    d.answer_user()
    d.silence(0.5)
    d.speech(0.12)  # a cough: shorter than min speech
    d.silence(0.5)
    assert "response.interrupted" not in d.types()
    assert d.s.state == State.SPEAKING


def test_client_truncate_rewrites_the_heard_text():
    d = Drive()
    d.speech(0.6)
    d.silence(0.6)
    d.answer_user()
    d.silence(0.5)
    d.speech(0.3)
    item = d.s.history.items[-1]
    d.s.receive_text(json.dumps({"type": "conversation.item.truncate", "item_id": item.id,
                                 "content_index": 0, "audio_end_ms": 150}), d.now)
    d._collect()
    assert d.events[-1]["type"] == "conversation.item.truncated"
    assert item.text == "It"  # 0.15 s of a 1 s sentence of 27 characters: its first word
    d.s.receive_text(json.dumps({"type": "conversation.item.truncate", "item_id": "nope",
                                 "audio_end_ms": 1}), d.now)
    d._collect()
    assert d.events[-1]["error"]["code"] == "item_not_found"


def test_user_going_on_before_the_answer_is_heard_cancels_it_silently():
    d = Drive(end_silence_ms=300)
    d.speech(0.6)
    d.silence(0.4)
    item = d.last(A.AsrFinish).item_id
    d.s.on_asr_final(item, "tell me", d.now)
    d._collect()
    respond = d.last(A.Respond)
    d.speech(0.4)  # the user continues before any agent audio
    assert A.Cancel(respond.gen) in d.actions
    assert "response.interrupted" not in d.types()  # nothing was played: nothing to flush
    assert d.s.state == State.USER_SPEAKING


def test_errors_from_models_end_the_turn_not_the_session():
    d = Drive()
    d.speech(0.6)
    d.silence(0.6)
    item = d.last(A.AsrFinish).item_id
    d.s.on_asr_final(item, "hello", d.now)
    d._collect()
    d.s.on_llm_error(d.last(A.Respond).gen, "CUDA out of memory", d.now)
    d._collect()
    assert [e["error"]["code"] for e in d.events if e["type"] == "error"] == ["llm_failed"]
    assert [e for e in d.events if e["type"] == "response.done"][-1]["response"]["status"] == \
        "failed"
    d.speech(0.6)
    d.silence(0.6)
    assert d.types().count("input_audio_buffer.committed") == 2


@pytest.mark.parametrize("rate", [8000, 48000])
def test_other_input_rates_are_resampled_to_16k(rate):
    d = Drive()
    d.s.receive_text(json.dumps({"type": "session.update",
                                 "session": {"input_sample_rate": rate}}), 0.0)
    d.s.receive_bytes(b"\0\0" * (rate // 10), 0.1)  # 100 ms
    d.s.receive_bytes(b"\0\0" * (rate // 10), 0.2)
    # the resampler holds back a little audio (its filter delay), never more than 50 ms
    assert 3200 - 800 <= d.s.samples_in <= 3200
    d.s.receive_text(json.dumps({"type": "session.update",
                                 "session": {"input_sample_rate": 16000}}), 0.3)
    assert d.s.drain()[-1].event["error"]["code"] == "session_locked"


@pytest.mark.parametrize("words, waits", [("I would like to book a table for", True),
                                          ("what is the weather like in Paris", False)])
def test_the_turn_taker_reads_the_partial_transcript(words, waits):
    """ASR partials reach the policy: with the shipped lexical weights an unfinished
    sentence is waited on past the silence timeout, a finished one is not."""
    from duplex.models.registry import load_lexical
    from duplex.turn.vap_policy import VAPPolicy

    d = Drive(policy=lambda cfg: VAPPolicy(cfg.turn, cfg.vad, words=load_lexical(cfg)),
              end_silence_ms=500, max_silence_ms=1200, unfinished_max_silence_ms=2000)
    d.speech(1.0)
    d.s.on_asr_partial(d.last(A.AsrStart).item_id, words, d.now)
    d.silence(1.0)
    assert ("input_audio_buffer.committed" not in d.types()) == waits
    d.silence(1.2)
    committed = [e for e in d.events if e["type"] == "input_audio_buffer.committed"]
    assert len(committed) == 1
