"""The streaming engine of the flattened model (duplex.models.flatten): what it
streams equals the offline forward pass, its step contract, its errors.

The model is the tiny random test LM (duplex.models.tiny) with its
vocabulary extended for a tiny random Mimi, untrained: its choices are
arbitrary but deterministic, which is all these properties need."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import say
from flatten_fixtures import codec_dir, llm_dir, one_thread  # noqa: F401 (fixtures)

from duplex.config import FlattenConfig
from duplex.errors import ModelUnavailable
from duplex.flatten import Kind


@pytest.fixture(scope="module")
def model_dir(model_cache, codec_dir, llm_dir):
    from duplex.models.codec import load_codec
    from duplex.recipes.flatten.backbone import save_untrained

    codec = load_codec(str(codec_dir), 4, "cpu")
    return save_untrained(str(llm_dir), codec, model_cache / "flatten-untrained")


def load(model_dir, codec_dir, **kw):
    from duplex.models.flatten import FlattenEngine

    cfg = dict(model=str(model_dir), codec=str(codec_dir), device="cpu", input_rate=24000,
               temperature=0.0, text_temperature=0.0)
    return FlattenEngine.load(FlattenConfig(**(cfg | kw)))


@pytest.fixture(scope="module")
def speech():
    return say("can you hear me, I would like to book a table", rate=24000)[: int(24000 * 1.92)]


def generated(engine, tokens):
    kinds = np.tile(engine.layout.kind_array(), len(tokens) // engine.layout.length)
    return np.isin(kinds, [Kind.AGENT_TEXT, Kind.USER_TEXT, Kind.AGENT_CODE])


@pytest.mark.parametrize("max_context_s", [60.0, 1.6])
def test_streamed_tokens_equal_the_offline_forward_pass(model_dir, codec_dir, speech,
                                                        max_context_s):
    engine = load(model_dir, codec_dir, max_context_s=max_context_s)
    stream = engine.stream()
    n = engine.chunk_samples
    outs = [stream.step(speech[i:i + n]) for i in range(0, len(speech), n)]
    tokens = np.concatenate([o.tokens for o in outs])
    assert len(tokens) == 12 * engine.layout.length  # 1.92 s = 12 chunks
    # the user's codes in the stream are the codec's offline codes of the input
    user = engine.vocab.code_ids(engine.codec.encode(speech))
    kinds = np.tile(engine.layout.kind_array(), 12)
    np.testing.assert_array_equal(tokens[kinds == Kind.USER_CODE], user.T.reshape(-1))
    # one forward pass over the model's context gives the same choices at every
    # generated position. After a context trim the context is the kept chunks and
    # only the chunks generated since were generated from exactly that context.
    context = np.concatenate([np.array(c) for c in stream.history])
    fresh = len(stream.history)
    if max_context_s < 10:
        fresh -= engine.max_chunks // 2
        assert len(stream.history) < 12 and fresh == 2
    else:
        np.testing.assert_array_equal(context, tokens)
    offline = engine.teacher_forced(context)
    gen = generated(engine, context)
    gen[: len(context) - fresh * engine.layout.length] = False
    np.testing.assert_array_equal(offline[gen], context[gen])


def test_step_contract_audio_per_chunk_text_reset_and_seed(model_dir, codec_dir, speech):
    from duplex.audio import resample

    engine = load(model_dir, codec_dir, input_rate=16000, temperature=0.8,
                  text_temperature=0.7, seed=3)
    assert (engine.input_rate, engine.output_rate, engine.chunk_samples) == (16000, 24000, 2560)
    audio16 = resample(speech, 24000, 16000)
    stream = engine.stream()
    pieces = [320, 2560, 5000, 100, 2560, 7000]  # any sizes; 20 ms frames included
    outs, at = [], 0
    for size in pieces:
        outs.append(stream.step(audio16[at:at + size]))
        at += size
    chunks = sum(o.chunks for o in outs)
    assert chunks >= at // 2560 - 1  # the resampler may hold back a few ms
    for o in outs:
        assert o.audio.dtype == np.float32 and len(o.audio) == o.chunks * 3840
        assert len(o.tokens) == o.chunks * engine.layout.length and isinstance(o.text, str)
        assert o.chunks == 0 or (o.lm_s > 0 and o.decode_s > 0)
    first = np.concatenate([o.tokens for o in outs])
    stream.reset()  # a reset stream, with its seed, replays the same conversation
    again = np.concatenate([stream.step(audio16[:at]).tokens])
    np.testing.assert_array_equal(again, first)
    with pytest.raises(ValueError, match="mono float32"):
        stream.step(np.zeros((2, 100), np.float32))


def test_agent_text_deltas_join_words_with_spaces():
    from duplex.models.flatten.engine import TextDelta

    words = {(1,): "good", (2,): "mor", (2, 3): "morning"}
    delta = TextDelta(pad=0, epad=9, detokenize=lambda ids: words[tuple(ids)])
    out = [delta.feed(t) for t in (0, 9, 1, 0, 9, 2, 3, 0)]
    assert out == ["", "", "good", "", "", " mor", "ning", ""]


def test_loading_errors_are_clear(model_dir, codec_dir, model_cache, tmp_path):
    from duplex.models.codec import save_random_codec
    from duplex.models.flatten import FlattenEngine

    with pytest.raises(ModelUnavailable, match="flatten.model"):
        FlattenEngine.load(FlattenConfig(model=str(tmp_path / "missing")))
    with pytest.raises(ModelUnavailable, match="no model name"):
        FlattenEngine.load(FlattenConfig())
    (tmp_path / "plain").mkdir()
    with pytest.raises(ModelUnavailable, match="not a model made by"):
        FlattenEngine.load(FlattenConfig(model=str(tmp_path / "plain")))
    with pytest.raises(ValueError, match="num_codebooks=4"):
        load(model_dir, codec_dir, num_codebooks=8)
    other = save_random_codec(model_cache / "encodec-tiny-flatten", "encodec")
    with pytest.raises(ValueError, match="model expects 4 x 32|trained at 12.5"):
        load(model_dir, other)
