"""Silero VAD engine: same numbers as the official wrapper, one probability per 20 ms frame."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import say, silence

from duplex.errors import ModelUnavailable
from duplex.interfaces import FRAME_SAMPLES, VoiceActivityDetector
from duplex.models.vad_silero import WINDOW, SileroVAD, default_model_path


@pytest.fixture(scope="module")
def speech():
    """1 s silence, ~2 s of espeak speech, 1 s silence; and where the speech is."""
    voiced = say("what is the weather like in paris today")
    audio = np.concatenate([silence(1.0), voiced, silence(1.0)])
    return audio, 16000, 16000 + len(voiced)


def chunked(vad: SileroVAD, audio: np.ndarray, sizes) -> np.ndarray:
    out, i, k = [], 0, 0
    while i < len(audio):
        n = sizes[k % len(sizes)]
        out.append(vad.process(audio[i:i + n]))
        i, k = i + n, k + 1
    return np.concatenate(out)


def test_implements_the_interface():
    assert isinstance(SileroVAD(), VoiceActivityDetector)


def test_window_probabilities_equal_the_official_onnx_wrapper(speech):
    import torch
    from silero_vad.utils_vad import OnnxWrapper

    audio = speech[0][: 40 * WINDOW]
    official = OnnxWrapper(str(default_model_path()))
    expected = [float(official(torch.from_numpy(audio[j:j + WINDOW]), 16000)) for j in range(0, len(audio), WINDOW)]
    probs = SileroVAD().process(audio)
    # Frame k ends at 320(k+1); it carries the last window ending at or before that.
    for k, p in enumerate(probs):
        done = (FRAME_SAMPLES * (k + 1)) // WINDOW
        assert p == pytest.approx(expected[done - 1] if done else 0.0, abs=1e-6)


def test_high_in_speech_low_in_silence(speech):
    audio, start, end = speech
    probs = SileroVAD().process(audio)
    assert len(probs) == len(audio) // FRAME_SAMPLES
    f0, f1 = start // FRAME_SAMPLES, end // FRAME_SAMPLES
    lead, voiced, tail = probs[5:f0 - 5], probs[f0 + 10:f1 - 10], probs[f1 + 25:]
    assert lead.max() < 0.2 and tail.max() < 0.2
    assert np.median(voiced) > 0.8 and (voiced > 0.5).mean() > 0.75


@pytest.mark.parametrize("sizes", [[7], [160], [333, 1], [512], [4000, 19, 640]])
def test_same_frames_whatever_the_chunking(speech, sizes):
    audio = speech[0][:48_123]  # not a whole number of frames
    whole = SileroVAD().process(audio)
    parts = chunked(SileroVAD(), audio, sizes)
    assert len(whole) == len(parts) == len(audio) // FRAME_SAMPLES
    np.testing.assert_allclose(parts, whole, atol=1e-6)


def test_instances_share_the_session_but_not_the_state(speech):
    audio = speech[0][:32_000]
    a, b = SileroVAD(), SileroVAD()
    assert a._session is b._session  # one onnxruntime session per model file
    alone = SileroVAD().process(audio)
    interleaved_a, interleaved_b = [], []
    for i in range(0, len(audio), 960):
        interleaved_a.append(a.process(audio[i:i + 960]))
        interleaved_b.append(b.process(np.zeros(960, np.float32)))
    np.testing.assert_allclose(np.concatenate(interleaved_a), alone, atol=1e-6)
    assert np.concatenate(interleaved_b).max() < 0.2


def test_reset_starts_over(speech):
    audio = speech[0][:20_000]
    vad = SileroVAD()
    first = vad.process(audio)
    vad.process(audio[:100])  # leftover samples must be dropped by reset too
    vad.reset()
    np.testing.assert_allclose(vad.process(audio), first, atol=1e-6)


def test_bad_input_and_missing_model():
    vad = SileroVAD()
    assert vad.process(np.zeros(0, np.float32)).shape == (0,)
    with pytest.raises(ValueError, match="mono"):
        vad.process(np.zeros((2, 320), np.float32))
    with pytest.raises(ValueError, match="float"):
        vad.process(np.zeros(320, np.int16))
    with pytest.raises(ModelUnavailable, match="nope.onnx"):
        SileroVAD("/nonexistent/nope.onnx")


def test_loading_leaves_torch_alone():
    """The silero_vad package sets torch threads to 1 on import; the engine must not import it."""
    import subprocess
    import sys

    code = ("import sys; from duplex.models.vad_silero import SileroVAD; SileroVAD().process("
            "__import__('numpy').zeros(640, 'float32')); "
            "assert 'torch' not in sys.modules and 'silero_vad' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
