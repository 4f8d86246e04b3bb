"""TTS engines: espeak-ng for real; piper on a tiny random VITS voice the test exports itself
(no voice can be downloaded here), including lookup by name and through the Hub cache."""
from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from duplex.audio import resample
from duplex.config import ASRConfig, TTSConfig
from duplex.errors import ModelUnavailable
from duplex.interfaces import TTS
from duplex.models import hub
from duplex.models.tts_espeak import EspeakTTS
from duplex.models.tts_piper import PiperTTS, resolve_voice

SENTENCE = "What is the weather like in Paris?"


# --- espeak-ng --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def espeak():
    return EspeakTTS(TTSConfig(engine="espeak", voice="en-us"))


def test_espeak_streams_float_chunks_that_are_speech(espeak):
    assert isinstance(espeak, TTS) and espeak.sample_rate == 22050
    chunks = list(espeak.synthesize(SENTENCE))
    assert len(chunks) > 5  # streamed, not one block
    assert all(c.dtype == np.float32 and c.ndim == 1 for c in chunks)
    audio = np.concatenate(chunks)
    assert 1.0 < len(audio) / espeak.sample_rate < 4.0  # seven words at 175 wpm
    assert 0.05 < np.abs(audio).max() <= 1.0
    from duplex.models.asr_pocketsphinx import PocketsphinxASR  # what it says can be understood

    stream = PocketsphinxASR(ASRConfig(engine="pocketsphinx", model="en-us")).stream()
    stream.feed(np.concatenate([resample(audio, espeak.sample_rate, 16000), np.zeros(4800, np.float32)]))
    assert "weather" in stream.finish().split()


def test_espeak_speed_voice_and_empty_text(espeak):
    normal = sum(len(c) for c in espeak.synthesize(SENTENCE))
    fast = sum(len(c) for c in EspeakTTS(TTSConfig(engine="espeak", speed=2.0)).synthesize(SENTENCE))
    assert fast < 0.7 * normal
    other_voice = np.concatenate(list(espeak.synthesize(SENTENCE, voice="en-gb+f3")))
    assert len(other_voice) > 0
    assert list(espeak.synthesize("   ")) == []
    assert len(list(espeak.synthesize("-v is not an option here"))) > 0  # text never becomes flags
    with pytest.raises(RuntimeError, match="xx-nope"):
        list(espeak.synthesize(SENTENCE, voice="xx-nope"))
    with pytest.raises(RuntimeError, match="voice"):
        EspeakTTS(TTSConfig(engine="espeak", voice="xx-nope"))
    with pytest.raises(TypeError):
        espeak.synthesize(None)


def test_espeak_cancel_stops_the_stream(espeak):
    long_text = " ".join([SENTENCE] * 20)
    full = len(list(espeak.synthesize(long_text)))
    cancel = threading.Event()
    got = []
    for chunk in espeak.synthesize(long_text, cancel=cancel):
        got.append(chunk)
        if len(got) == 3:
            cancel.set()
    assert len(got) == 3 < full


def test_espeak_missing_program_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)  # stands in for a machine without it
    with pytest.raises(ModelUnavailable, match="espeak-ng"):
        EspeakTTS(TTSConfig(engine="espeak"))


# --- piper ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_voice(model_cache) -> Path:
    from duplex.models.tiny import build_tiny_piper_voice

    return build_tiny_piper_voice(model_cache / "piper")


@pytest.mark.slow  # builds a tiny random model first
def test_piper_synthesizes_one_chunk_per_sentence(tiny_voice):
    tts = PiperTTS(TTSConfig(engine="piper", model=str(tiny_voice)))
    assert isinstance(tts, TTS) and tts.sample_rate == 22050
    text = "Hello there. How are you today?"
    chunks = list(tts.synthesize(text))
    sentences = tts.voice.phonemize(text)
    assert len(chunks) == len(sentences) == 2
    for chunk, phonemes in zip(chunks, sentences):
        ids = tts.voice.phonemes_to_ids(phonemes)
        # VITS: at least one 256-sample frame per phoneme id, and whole frames only
        assert chunk.dtype == np.float32 and len(chunk) % 256 == 0 and len(chunk) >= 256 * len(ids)
        assert np.isfinite(chunk).all() and np.abs(chunk).max() > 0
    fast = PiperTTS(TTSConfig(engine="piper", model=str(tiny_voice), speed=3.0))
    assert sum(map(len, fast.synthesize(text))) < sum(map(len, chunks))
    cancel = threading.Event()
    cancel.set()
    assert list(tts.synthesize(text, cancel=cancel)) == []
    assert list(tts.synthesize("  ")) == []


@pytest.mark.slow  # builds a tiny random model first
def test_piper_finds_voices_by_name(tiny_voice, tmp_path, monkeypatch):
    name = "en_US-tiny-medium"
    voices = tmp_path / "voices"
    voices.mkdir()
    shutil.copy(tiny_voice, voices / f"{name}.onnx")
    shutil.copy(f"{tiny_voice}.json", voices / f"{name}.onnx.json")
    monkeypatch.setenv("PIPER_VOICES_DIR", str(voices))
    assert resolve_voice(name) == voices / f"{name}.onnx"
    assert resolve_voice(str(voices)) == voices / f"{name}.onnx"  # a directory with one voice

    # The Hub cache, laid out as rhasspy/piper-voices is.
    from huggingface_hub import constants

    monkeypatch.delenv("PIPER_VOICES_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "empty"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = tmp_path / "repo"
    (repo / "en/en_US/tiny/medium").mkdir(parents=True)
    shutil.copytree(voices, repo / "en/en_US/tiny/medium", dirs_exist_ok=True)
    hub.add_to_cache("rhasspy/piper-voices", repo)
    tts = PiperTTS(TTSConfig(engine="piper", model=name))
    assert tts.path.name == f"{name}.onnx" and "piper-voices" in str(tts.path)
    assert len(list(tts.synthesize("Hi."))) == 1


def test_piper_missing_voices_say_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    with pytest.raises(ModelUnavailable, match="en_US-nobody-medium") as err:
        PiperTTS(TTSConfig(engine="piper", model="en_US-nobody-medium"))
    assert "download" in str(err.value)
    with pytest.raises(ModelUnavailable, match="not a piper voice name"):
        PiperTTS(TTSConfig(engine="piper", model="lessac"))
    (tmp_path / "v.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelUnavailable, match="v.onnx.json"):
        PiperTTS(TTSConfig(engine="piper", model=str(tmp_path / "v.onnx")))
    (tmp_path / "v.onnx.json").write_text("{}")
    with pytest.raises(ModelUnavailable, match="cannot load"):
        PiperTTS(TTSConfig(engine="piper", model=str(tmp_path / "v.onnx")))
