"""Time-sliced duplex decoding in the session core and in the server.

The core tests answer each tick by hand: a duplex-fine-tuned checkpoint is
out of reach here (no GPU, no data), so what the model "decides" is written
out, and the tests check what the session does with it. The last test runs
the real engine (tiny random model) through the virtual-clock driver.
"""
import numpy as np
import pytest

from duplex import actions as A
from duplex.config import load_config
from duplex.duplex_session import DuplexSession, heard_chars
from duplex.turn.vad_policy import VADPolicy

from test_session_core import RATE, Drive


class DuplexDrive(Drive):
    def __init__(self, mode="duplex", **turn):
        self.cfg = load_config("test", sets=[f"turn.{k}={v}" for k, v in turn.items()] + [
            "llm.engine=tdm", f"llm.mode={mode}", "llm.slice_s=0.5"])
        self.s = DuplexSession(self.cfg, VADPolicy(self.cfg.turn, self.cfg.vad))
        self.now, self.actions, self.events = 0.0, [], []
        self.s.open(self.now)
        self._collect()

    def ticks(self):
        return [a for a in self.actions if isinstance(a, A.DuplexTick)]

    def answer(self, text, state, audio_s=1.0):
        """The model's slice for the last tick; its sentences are synthesized at once."""
        tick = self.ticks()[-1]
        n_before = len([a for a in self.actions if isinstance(a, A.Synthesize)])
        self.s.on_tick_result(tick.seq, text, state, self.now)
        self._collect()
        for syn in [a for a in self.actions if isinstance(a, A.Synthesize)][n_before:]:
            self.s.on_tts_audio(syn.gen, syn.seq, np.full(int(RATE * audio_s), 0.1, np.float32),
                                self.now)
            self.s.on_tts_done(syn.gen, syn.seq, self.now)
        self._collect()


def test_ticks_come_every_slice_and_carry_each_new_word_once():
    d = DuplexDrive()
    d.speech(0.3)
    item = d.last(A.AsrStart).item_id
    d.s.on_asr_partial(item, "what is", d.now)
    d.speech(0.3)  # 0.6 s of audio: the first tick is due
    assert [t.user_text for t in d.ticks()] == ["what is"]
    d.answer("", "idle")
    d.s.on_asr_partial(item, "what is the weather", d.now)
    d.silence(0.5)
    d.answer("", "idle")
    d.s.on_asr_final(item, "what is the weather like", d.now)
    d.silence(0.5)
    d.answer("", "idle")
    d.silence(0.5)
    texts = [t.user_text for t in d.ticks()]
    assert texts[0] == "what is" and " ".join(t for t in texts if t) == \
        "what is the weather like"
    assert all(not t.end_of_turn for t in d.ticks())  # duplex mode: the model decides


def test_the_model_speaks_over_slices_and_ends_with_eos():
    d = DuplexDrive()
    d.speech(0.6)
    d.answer("", "idle")
    d.silence(0.5)
    d.answer("It is sunny.", "speak")
    assert "response.created" in d.types()
    d.silence(0.5)
    d.answer(" Take a hat.", "eos")
    d.silence(2.5)
    done = [e for e in d.events if e["type"] == "response.done"][-1]["response"]
    assert done["status"] == "completed"
    assert d.s.history.items[-1].text == "It is sunny. Take a hat."


def test_barge_in_stops_the_audio_and_rolls_back_exactly_the_unheard_text():
    d = DuplexDrive(min_speech_ms=200, interrupt_min_ms=200)
    d.speech(0.6)
    d.answer("", "idle")
    d.silence(0.5)
    d.answer("It is sunny in Paris today.", "speak")
    d.silence(0.5)
    d.answer(" Take a hat with you.", "speak")
    d.silence(1.2)  # the first sentence (1 s of audio) has been heard
    d.speech(0.4)  # the user cuts in
    assert "response.interrupted" in d.types()
    heard = d.s.history.items[-1].text
    assert heard == "It is sunny in Paris today."
    rollback = [a for a in d.actions if isinstance(a, A.DuplexRollback)]
    assert rollback == [A.DuplexRollback(len(" Take a hat with you."))]


def test_the_model_yielding_to_the_user_stops_the_agent():
    d = DuplexDrive(interrupt_min_ms=2000)  # the VAD alone would not stop it
    d.speech(0.6)
    d.answer("", "idle")
    d.silence(0.5)
    d.answer("Let me tell you a long story about it.", "speak", audio_s=3.0)
    d.silence(0.5)
    d.speech(0.6)  # the user talks; the next slice the model writes is <idle>
    tick = d.ticks()[-1]
    d.s.on_tick_result(tick.seq, "", "idle", d.now)
    d._collect()
    reason = [e for e in d.events if e["type"] == "response.done"][-1]["response"]
    assert reason["status_details"]["reason"] == "model_yielded"
    assert any(isinstance(a, A.DuplexRollback) for a in d.actions)


def test_turn_mode_answers_at_the_end_of_turn_and_steps_until_eos():
    d = DuplexDrive(mode="turn", end_silence_ms=400)
    d.speech(0.6)
    item = d.last(A.AsrStart).item_id
    d.silence(0.2)
    assert d.ticks() == []  # no periodic ticks in turn mode
    d.s.on_asr_final(item, "hello there", d.now)
    d.silence(0.3)
    (tick,) = d.ticks()
    assert tick.end_of_turn and tick.user_text == "hello there"
    d.answer("Hi!", "speak")
    assert len(d.ticks()) == 2 and d.ticks()[-1].user_text is None  # stepped again at once
    d.answer(" How can I help?", "eos")
    assert len(d.ticks()) == 2


def test_heard_chars_maps_heard_words_back_to_the_model_text():
    assert heard_chars("It is  sunny. Take", "It is sunny.") == len("It is  sunny.")
    assert heard_chars("abc def", "") == 0


@pytest.mark.slow
def test_the_real_engine_runs_ticks_through_the_virtual_clock_driver():
    from conftest import say, silence
    from duplex.models.registry import load_models
    from duplex.server.virtual import VirtualRunner

    cfg = load_config("test", sets=["llm.engine=tdm", "llm.mode=duplex", "llm.slice_s=0.5",
                                    "llm.model=tiny-random"])
    models = load_models(cfg)
    runner = VirtualRunner(cfg, models, model_time="zero")
    audio = np.concatenate([say("what is the weather like in paris"), silence(2.0)])
    seen = []
    step = models.llm.step

    def spy(sid, user, **kw):
        r = step(sid, user, **kw)
        seen.append((user, r.state))
        return r

    models.llm.step = spy
    rec = runner.run(audio, 16000)
    assert len(seen) >= audio.size / 16000 / 0.5 - 1  # a tick every half second
    words = " ".join(u for u, _ in seen if u).split()
    final = [e["transcript"] for _, e in rec.events
             if e["type"] == "conversation.item.input_audio_transcription.completed"]
    # Every recognised word reached the model once (partials may differ from the final).
    assert words[:2] == ["what", "is"] and len(words) == len(" ".join(final).split())
    assert {state for _, state in seen} <= {"speak", "idle", "eos"}


@pytest.mark.parametrize("mode", ["duplex", "turn"])
def test_a_client_commit_or_response_request_asks_the_model_for_a_tick_now(mode):
    d = DuplexDrive(mode=mode, end_silence_ms=5000)
    d.s.receive_text('{"type": "input_audio_buffer.commit"}', d.now)
    d._collect()
    assert d.events[-1]["error"]["code"] == "input_audio_buffer_commit_empty"
    d.speech(0.6)
    d.s.on_asr_partial(d.last(A.AsrStart).item_id, "what time is it", d.now)
    if d.ticks():  # duplex mode: the periodic tick in flight comes back first
        d.answer("", "idle")
    n = len(d.ticks())
    d.s.receive_text('{"type": "response.create"}', d.now)
    d._collect()
    assert len(d.ticks()) == n + 1 and d.ticks()[-1].user_text == "what time is it"
    assert d.ticks()[-1].end_of_turn == (mode == "turn")
    d.answer("", "idle")  # the model stays silent: no response is open
    d.s.receive_text('{"type": "input_audio_buffer.commit"}', d.now)
    d._collect()
    assert "input_audio_buffer.committed" in d.types()
    assert len(d.ticks()) == n + 2 and d.ticks()[-1].end_of_turn == (mode == "turn")
