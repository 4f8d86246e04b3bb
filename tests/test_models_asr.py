"""ASR engines: pocketsphinx on real espeak speech; faster-whisper loading and streaming on a
tiny random Whisper the test converts with CTranslate2 (no weights can be downloaded here)."""
from __future__ import annotations

import itertools
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import say, silence

from duplex.config import ASRConfig
from duplex.errors import ModelUnavailable
from duplex.interfaces import ASR, ASRStream
from duplex.models import hub
from duplex.models.asr_pocketsphinx import PocketsphinxASR
from duplex.models.asr_whisper import WhisperASR

WEATHER = "what is the weather like in paris"


@pytest.fixture(scope="module")
def sphinx():
    return PocketsphinxASR(ASRConfig(engine="pocketsphinx", model="en-us"))


def stream_through(stream, audio: np.ndarray, chunk: int = 1600):
    partials = [stream.feed(audio[i:i + chunk]) for i in range(0, len(audio), chunk)]
    return partials, stream.finish()


# --- pocketsphinx -----------------------------------------------------------------------------

def test_pocketsphinx_hears_the_weather_question(sphinx):
    assert isinstance(sphinx, ASR)
    stream = sphinx.stream("en")
    assert isinstance(stream, ASRStream)
    audio = np.concatenate([silence(0.3), say(WEATHER, voice="en-us"), silence(0.3)])
    partials, final = stream_through(stream, audio)
    assert "weather" in final.split()
    got = [p for p in partials if p is not None]
    assert got and all(isinstance(p, str) for p in got)
    assert all(a != b for a, b in itertools.pairwise(got))  # None, not a repeat, when nothing changed
    assert any("weather" in p for p in got)  # partials arrive while the audio streams in


def test_pocketsphinx_concurrent_streams_do_not_mix(sphinx):
    texts = {WEATHER: "weather", "good morning how are you": "you"}
    results: dict[str, str] = {}

    def run(text):
        stream = sphinx.stream()
        audio = np.concatenate([say(text), silence(0.3)])
        results[text] = stream_through(stream, audio, chunk=800)[1]

    threads = [threading.Thread(target=run, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for text, word in texts.items():
        assert word in results[text].split(), results
    assert "weather" not in results["good morning how are you"], results


def test_pocketsphinx_stream_lifecycle_and_errors(sphinx):
    stream = sphinx.stream()
    assert stream.feed(np.zeros(0, np.float32)) is None
    assert stream.finish() == ""  # no audio, no words
    with pytest.raises(RuntimeError, match="finished"):
        stream.feed(np.zeros(160, np.float32))
    bad = sphinx.stream()
    with pytest.raises(ValueError, match="mono"):
        bad.feed(np.zeros((2, 160), np.float32))
    with pytest.raises(ValueError, match="float"):
        bad.feed(np.zeros(160, np.int16))  # PCM16 must be converted first
    bad.close()
    with pytest.raises(ValueError, match="English"):
        sphinx.stream("fr")
    with pytest.raises(ModelUnavailable, match="missing"):
        PocketsphinxASR(ASRConfig(engine="pocketsphinx", model="/tmp"))
    abandoned = sphinx.stream()
    abandoned.feed(say("hello"))
    abandoned.close()  # a cancelled turn gives its decoder back without decoding
    again = sphinx.stream()
    assert "weather" in stream_through(again, np.concatenate([say(WEATHER), silence(0.3)]))[1]


# --- faster-whisper ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_whisper(model_cache) -> Path:
    from duplex.models.tiny import build_tiny_whisper_ct2

    return build_tiny_whisper_ct2(model_cache / "whisper-ct2")


@pytest.mark.slow  # builds a tiny random model first
def test_whisper_streams_partials_at_the_configured_interval(tiny_whisper):
    cfg = ASRConfig(engine="whisper", model=str(tiny_whisper), partial_interval_ms=500, beam_size=2)
    asr = WhisperASR(cfg)
    assert isinstance(asr, ASR)
    audio = np.concatenate([say(WEATHER), silence(0.2)])
    stream = asr.stream()
    assert isinstance(stream, ASRStream)
    partials = []
    for i in range(0, len(audio), 1600):  # 100 ms chunks
        partials.append(stream.feed(audio[i:i + 1600]))
        # a re-decode exactly each time another 500 ms (8000 samples) has arrived
        assert stream.partial_decodes == stream.samples // 8000
    assert all(p is None or isinstance(p, str) for p in partials)
    first = next(p for p in partials if p is not None)
    assert first == asr.transcribe(audio[:8000], "en", beam_size=1)  # the first partial: first 0.5 s
    final = stream.finish()
    assert isinstance(final, str) and final
    assert final == asr.transcribe(audio, "en", beam_size=2)  # the whole utterance, cfg.beam_size
    with pytest.raises(RuntimeError, match="finished"):
        stream.feed(audio[:160])
    assert asr.stream().finish() == ""  # nothing heard, nothing decoded


@pytest.mark.slow  # builds a tiny random model first
def test_whisper_size_name_resolves_from_the_hub_cache(tiny_whisper, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.add_to_cache("Systran/faster-whisper-tiny.en", tiny_whisper)  # as a download would leave it
    asr = WhisperASR(ASRConfig(engine="whisper", model="tiny.en"))
    assert Path(asr.path).parent.name == "snapshots"
    assert isinstance(asr.stream().finish(), str)


def test_whisper_missing_models_say_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailable, match="nobody/whisper-nope") as err:
        WhisperASR(ASRConfig(engine="whisper", model="nobody/whisper-nope"))
    assert "ct2-transformers-converter" in str(err.value)
    with pytest.raises(ModelUnavailable, match="no model.bin"):
        WhisperASR(ASRConfig(engine="whisper", model=str(tmp_path)))
    with pytest.raises(ModelUnavailable, match="size name"):
        WhisperASR(ASRConfig(engine="whisper", model="huge.en"))
