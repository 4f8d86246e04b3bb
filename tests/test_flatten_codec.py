"""The codec layer (duplex.models.codec): Mimi through transformers, streaming
encode/decode equal to the offline calls, swappable codecs, clear errors.

No weights can be downloaded here, so the codecs are transformers models
built from their configs with random weights and saved to disk, then loaded
by the real loading code. Their codes mean nothing; shapes, rates and
streaming behaviour are the real models'."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import say
from duplex.models.codec import load_codec, save_random_codec
from flatten_fixtures import one_thread  # noqa: F401 (fixture)

from duplex.errors import ModelUnavailable
from duplex.flatten import ChunkLayout, FlatVocab, flatten_duplex, unflatten_duplex
from duplex.interfaces import Codec, CodecDecoderStream, CodecEncoderStream


@pytest.fixture(scope="module")
def mimi_dir(model_cache):
    """Mimi from its default config (79 M parameters, random)."""
    path = model_cache / "mimi-default-random"
    return path if path.exists() else save_random_codec(path, "mimi", tiny=False)


@pytest.fixture(scope="module")
def speech():
    return say("hello, could you tell me the weather for tomorrow", rate=24000)[: 24000 * 2]


@pytest.mark.slow
def test_mimi_streams_exactly_what_it_encodes_and_decodes_offline(mimi_dir, speech):
    codec = load_codec(str(mimi_dir), num_codebooks=4, device="cpu")
    assert isinstance(codec, Codec)
    assert (codec.sample_rate, codec.frame_rate, codec.frame_size) == (24000, 12.5, 1920)
    assert (codec.num_codebooks, codec.codebook_size) == (4, 2048)
    offline = codec.encode(speech)
    assert offline.shape == (4, int(np.ceil(len(speech) / 1920))) and offline.dtype == np.int64
    assert 0 <= offline.min() and offline.max() < 2048

    enc = codec.encoder_stream()
    assert isinstance(enc, CodecEncoderStream)
    sizes = [700, 3840, 1, 2500, 5000, 1919]  # uneven pieces: frames complete across calls
    pieces, at = [], 0
    while at < len(speech):
        n = sizes[len(pieces) % len(sizes)]
        pieces.append(enc.encode(speech[at:at + n]))
        at += n
    streamed = np.concatenate(pieces, axis=1)
    whole = len(speech) // 1920  # the stream holds back the incomplete last frame
    np.testing.assert_array_equal(streamed, offline[:, :whole])

    audio = codec.decode(offline)
    assert audio.shape == (offline.shape[1] * 1920,) and audio.dtype == np.float32
    dec = codec.decoder_stream()
    assert isinstance(dec, CodecDecoderStream)
    chunks = [dec.decode(offline[:, i:i + 2]) for i in range(0, offline.shape[1], 2)]
    assert all(len(c) == 3840 for c in chunks[:-1])
    np.testing.assert_allclose(np.concatenate(chunks), audio, atol=1e-4)

    enc.reset()  # a reset stream starts over
    np.testing.assert_array_equal(enc.encode(speech[:3840]), offline[:, :2])


def test_codebooks_are_configurable_and_residual(model_cache, speech):
    path = save_random_codec(model_cache / "mimi-tiny-a", "mimi", tiny=True)
    four = load_codec(str(path), 4, "cpu").encode(speech)
    two = load_codec(str(path), 2, "cpu").encode(speech)
    np.testing.assert_array_equal(two, four[:2])  # the first codebooks do not depend on Q
    with pytest.raises(ValueError, match="num_codebooks must be in 1..4"):
        load_codec(str(path), 5, "cpu")


def test_a_missing_codec_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailable, match="kyutai/mimi.*flatten.codec"):
        load_codec("kyutai/mimi")
    with pytest.raises(ModelUnavailable, match="no file or directory"):
        load_codec(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelUnavailable, match="cannot read its config"):
        load_codec(str(tmp_path / "empty"))


def test_bad_audio_and_codes_are_rejected(model_cache):
    codec = load_codec(str(save_random_codec(model_cache / "mimi-tiny-b")), 4, "cpu")
    with pytest.raises(ValueError, match="mono"):
        codec.encode(np.zeros((2, 100), np.float32))
    with pytest.raises(ValueError, match="float"):
        codec.encode(np.zeros(100, np.int16))
    with pytest.raises(ValueError, match="lie in"):
        codec.decode(np.full((4, 2), 32))
    with pytest.raises(ValueError, match="shaped"):
        codec.decoder_stream().decode(np.zeros((3, 2), np.int64))


@pytest.mark.parametrize("kind,rate,frame_rate,frames_per_chunk", [
    ("encodec", 24000, 75.0, 12), ("dac", 16000, 31.25, 5)])
def test_another_codec_swaps_in(model_cache, kind, rate, frame_rate, frames_per_chunk):
    codec = load_codec(str(save_random_codec(model_cache / f"{kind}-tiny", kind)), 2, "cpu")
    assert isinstance(codec, Codec)
    assert (codec.sample_rate, codec.frame_rate) == (rate, frame_rate)
    audio = say("one two three", rate=rate)[: int(rate * 0.64)]
    offline = codec.encode(audio)
    assert offline.shape == (2, round(0.64 * frame_rate))
    # streaming re-runs a sliding window; while it reaches back to the start it is exact
    enc = codec.encoder_stream()
    step = codec.frame_size * frames_per_chunk
    streamed = np.concatenate([enc.encode(audio[i:i + step]) for i in range(0, len(audio), step)],
                              axis=1)
    if kind == "encodec":  # causal: a chunk's codes do not depend on later audio
        np.testing.assert_array_equal(streamed, offline)
    assert streamed.shape == offline.shape
    dec = codec.decoder_stream()
    assert sum(len(dec.decode(offline[:, i:i + frames_per_chunk]))
               for i in range(0, offline.shape[1], frames_per_chunk)) == len(codec.decode(offline))
    # and the flattened format takes its codes at its frame rate
    layout = ChunkLayout("full", 160, codec.frame_rate, 2, 2)
    vocab = FlatVocab(10, 2, codec.codebook_size)
    seq = flatten_duplex(offline, offline[::-1], [], [], vocab=vocab, layout=layout,
                         tokenize=lambda w: [])
    back = unflatten_duplex(seq.tokens, vocab=vocab, layout=layout, detokenize=str)
    np.testing.assert_array_equal(back.agent_codes, offline)
