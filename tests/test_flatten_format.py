"""The flattened speech-text format (duplex.flatten): ids, layouts, text slots,
loss weights, round trips, turn-based stages. Pure and fast."""
from __future__ import annotations

import numpy as np
import pytest
from duplex.recipes.data.synth_dialogues import spoken_text
from flatten_fixtures import llm_dir  # noqa: F401 (fixture)

from duplex.data.switchboard import load_dialogues
from duplex.flatten import (
    ChunkLayout,
    FlatVocab,
    Kind,
    LossGroup,
    LossWeights,
    Word,
    flatten_duplex,
    half_duplex,
    modality_alignment,
    place_words,
    read_words,
    unflatten_duplex,
)

# A hand-made tokenizer: each word maps to fixed ids below the text size.
WORDS = {"hi": [7], "yes": [8, 9], "ok": [10], "no": [11, 12, 13]}
IDS = {tuple(v): k for k, v in WORDS.items()}
tok = WORDS.__getitem__


def detok(ids):
    return IDS[tuple(ids)]


V = FlatVocab(text_size=50, num_codebooks=2, codebook_size=8)
U, A, PAD, EPAD = 50, 51, 52, 53  # the control ids after 50 text ids
C0 = 60  # first code id: 50 + 10 control tokens


def code(q, c):
    return C0 + q * 8 + c


def test_vocabulary_layout_and_offsets():
    assert (V.special("<|u|>"), V.special("<|a|>"), V.pad, V.epad) == (U, A, PAD, EPAD)
    assert V.code_base == C0 and V.size == C0 + 2 * 8
    assert V.code_range(1) == (68, 76)
    np.testing.assert_array_equal(V.code_ids(np.array([[0, 7], [0, 7]])), [[60, 67], [68, 75]])
    assert FlatVocab.from_dict(V.to_dict()) == V
    # a padded embedding table: control ids start after the tokenizer, not at text_size
    assert FlatVocab(100, 4, 2048, special_base=120).code_base == 130
    with pytest.raises(ValueError, match="shaped"):
        V.code_ids(np.zeros((3, 2), np.int64))
    with pytest.raises(ValueError, match="lie in"):
        V.code_ids(np.array([[8], [0]]))
    with pytest.raises(KeyError, match="unknown control token"):
        V.special("<|x|>")


def test_chunk_layouts():
    full = ChunkLayout("full", 160, 12.5, 4, 2)
    assert full.frames == 2 and full.length == 1 + 8 + 1 + 2 + 8  # REFERENCE §4 layout
    kinds = [k for k, _, _ in full.positions()]
    assert kinds == [Kind.CONTROL] + [Kind.USER_CODE] * 8 + [Kind.CONTROL] + \
        [Kind.AGENT_TEXT] * 2 + [Kind.AGENT_CODE] * 8
    assert ChunkLayout("full_user_text", 160, 12.5, 4, 2).length == 22
    assert ChunkLayout("full_no_text", 160, 12.5, 4, 2).length == 18
    assert ChunkLayout("full", 160, 75.0, 2, 2).frames == 12  # EnCodec's 75 Hz
    with pytest.raises(ValueError, match="whole number of codec frames"):
        ChunkLayout("full", 100, 12.5, 4, 2)
    with pytest.raises(ValueError, match="unknown chunk layout"):
        ChunkLayout("quarter")


def test_text_slots_align_words_to_their_start_with_pad_and_epad():
    slot = 0.08
    # "hi" at 0.10 s -> slot 1 (epad in 0); "yes" at 0.35 -> slot 4 (epad in 3)
    slots = place_words([([7], 0.10), ([8, 9], 0.35)], 6, slot, PAD, EPAD)
    np.testing.assert_array_equal(slots, [EPAD, 7, PAD, EPAD, 8, 9])
    # a word in the very first slot needs no epad; a word whose slots are taken moves later
    slots = place_words([([11, 12, 13], 0.0), ([10], 0.1)], 7, slot, PAD, EPAD)
    np.testing.assert_array_equal(slots, [11, 12, 13, EPAD, 10, PAD, PAD])
    assert read_words(slots, PAD, EPAD) == [([11, 12, 13], 0), ([10], 4)]
    with pytest.raises(ValueError, match="sorted"):
        place_words([([7], 0.3), ([8], 0.1)], 6, slot, PAD, EPAD)


def test_hand_built_example_tokens_loss_weights_and_clip_padding():
    lay = ChunkLayout("full", 160, 12.5, 2, 2)
    agent = np.array([[1, 2, 3, 4, 5, 6], [7, 0, 1, 2, 3, 4]])
    user = np.array([[0, 1, 2, 3, 4, 5], [6, 7, 0, 1, 2, 3]])
    seq = flatten_duplex(agent, user, [Word("hi", 0.10, 0.3), Word("yes", 0.35, 0.5)],
                         [Word("ok", 0.0, 0.2)], vocab=V, layout=lay, tokenize=tok,
                         weights=LossWeights(text=1, text_pad=0.5, semantic=100, acoustic=1),
                         valid_s=0.40)
    u, a = lambda f, q: code(q, user[q, f]), lambda f, q: code(q, agent[q, f])
    expect = []
    for c, (t0, t1) in enumerate([(EPAD, 7), (PAD, EPAD), (8, 9)]):
        f0, f1 = 2 * c, 2 * c + 1
        expect += [U, u(f0, 0), u(f0, 1), u(f1, 0), u(f1, 1), A, t0, t1,
                   a(f0, 0), a(f0, 1), a(f1, 0), a(f1, 1)]
    np.testing.assert_array_equal(seq.tokens, expect)
    # loss only on the agent: text 1 (pad 0.5), semantic codebook 100, acoustic 1;
    # the clip ends at 0.40 s, so the second text slot and frame of chunk 2 are padding
    np.testing.assert_allclose(seq.weights, [
        0, 0, 0, 0, 0, 0, 1, 1, 100, 1, 100, 1,
        0, 0, 0, 0, 0, 0, .5, 1, 100, 1, 100, 1,
        0, 0, 0, 0, 0, 0, 1, 0, 100, 1, 0, 0])
    T, AU = LossGroup.TEXT, LossGroup.AUDIO
    np.testing.assert_array_equal(seq.groups, [
        0, 0, 0, 0, 0, 0, T, T, AU, AU, AU, AU,
        0, 0, 0, 0, 0, 0, T, T, AU, AU, AU, AU,
        0, 0, 0, 0, 0, 0, T, 0, AU, AU, 0, 0])
    assert seq.num_chunks == 3 and len(seq.windows(2)) == 2


def test_user_text_layout_weights_user_slots_only_when_asked():
    lay = ChunkLayout("full_user_text", 160, 12.5, 2, 2)
    codes = np.zeros((2, 4), np.int64)
    args = dict(vocab=V, layout=lay, tokenize=tok)
    words = ([Word("hi", 0.1)], [Word("no", 0.0)])
    quiet = flatten_duplex(codes, codes, *words, **args)
    heard = flatten_duplex(codes, codes, *words, **args, weights=LossWeights(user_text=0.5))
    user_slots = quiet.kinds == Kind.USER_TEXT
    assert quiet.weights[user_slots].sum() == 0
    # "no" fills the first 3 user slots (weight 0.5), the 4th is a pad (0.5 * 0.5)
    np.testing.assert_allclose(heard.weights[user_slots], [.5, .5, .5, .25])


@pytest.mark.parametrize("variant", ["full", "full_user_text", "full_no_text"])
def test_flatten_then_unflatten_returns_codes_and_word_starts(variant):
    lay = ChunkLayout(variant, 160, 12.5, 2, 2)
    rng = np.random.default_rng(1)
    agent, user = rng.integers(0, 8, (2, 20)), rng.integers(0, 8, (2, 20))
    a_words = [Word("hi", 0.05), Word("no", 0.41), Word("yes", 1.0), Word("ok", 1.44)]
    u_words = [Word("ok", 0.2), Word("yes", 0.9)]
    seq = flatten_duplex(agent, user, a_words, u_words, vocab=V, layout=lay, tokenize=tok)
    back = unflatten_duplex(seq.tokens, vocab=V, layout=lay, detokenize=detok)
    np.testing.assert_array_equal(back.agent_codes, agent)
    np.testing.assert_array_equal(back.user_codes, user)
    def on_grid(ws):
        return [(w.text, round(int(w.start / 0.08 + 1e-6) * 0.08, 6)) for w in ws]

    def got(ws):
        return [(w.text, round(w.start, 6)) for w in ws]

    assert got(back.agent_words) == ([] if variant == "full_no_text" else on_grid(a_words))
    assert got(back.user_words) == (on_grid(u_words) if variant == "full_user_text" else [])


@pytest.mark.usefixtures("switchboard")
def test_round_trip_on_a_switchboard_dialogue_with_a_real_tokenizer(llm_dir):
    from duplex.models.flatten.text import word_codec
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(llm_dir)
    tokenize, detokenize = word_codec(tokenizer)
    d = next(load_dialogues(limit=1))
    words = [[Word(spoken_text(w), s, e) for s, e, w in d.words[side]
              if s < 55 and spoken_text(w)] for side in (0, 1)]  # all fit in 60 s
    vocab = FlatVocab(len(tokenizer), 4, 2048)
    lay = ChunkLayout("full_user_text", 160, 12.5, 4, 2)
    rng = np.random.default_rng(0)
    agent, user = rng.integers(0, 2048, (4, 750)), rng.integers(0, 2048, (4, 750))  # 60 s
    seq = flatten_duplex(agent, user, *words, vocab=vocab, layout=lay, tokenize=tokenize)
    back = unflatten_duplex(seq.tokens, vocab=vocab, layout=lay, detokenize=detokenize)
    np.testing.assert_array_equal(back.agent_codes, agent)
    np.testing.assert_array_equal(back.user_codes, user)
    for orig, got in ((words[0], back.agent_words), (words[1], back.user_words)):
        assert [w.text for w in got] == [w.text for w in orig]
        # Each word starts in the slot of its start time, unless the previous word's
        # tokens plus one <epad> still fill it: then right after them.
        free = 0
        for o, g in zip(orig, got):
            own = int(np.floor(o.start / 0.08 + 1e-6))
            assert round(g.start / 0.08) == (own if own >= free + 1 or free == own == 0
                                             else free + 1), o
            free = round(g.start / 0.08) + len(tokenize(o.text))


def test_unflatten_rejects_a_broken_sequence():
    lay = ChunkLayout("full", 160, 12.5, 2, 2)
    seq = flatten_duplex(np.zeros((2, 2), np.int64), np.zeros((2, 2), np.int64), [], [],
                         vocab=V, layout=lay, tokenize=tok)
    with pytest.raises(ValueError, match="whole number"):
        unflatten_duplex(seq.tokens[:-1], vocab=V, layout=lay, detokenize=detok)
    bad = seq.tokens.copy()
    bad[0] = A
    with pytest.raises(ValueError, match="<\\|u\\|>"):
        unflatten_duplex(bad, vocab=V, layout=lay, detokenize=detok)
    bad = seq.tokens.copy()
    bad[-1] = code(0, 3)  # a codebook-0 id where codebook 1 belongs
    with pytest.raises(ValueError, match="codebook"):
        unflatten_duplex(bad, vocab=V, layout=lay, detokenize=detok)
    with pytest.raises(ValueError, match="pad the audio"):
        flatten_duplex(np.zeros((2, 3), np.int64), np.zeros((2, 3), np.int64), [], [],
                       vocab=V, layout=lay, tokenize=tok)


def test_modality_alignment_and_half_duplex_put_the_loss_on_the_agent_outputs():
    rng = np.random.default_rng(2)
    agent, user = rng.integers(0, 8, (2, 25)), rng.integers(0, 8, (2, 25))
    a_words = [Word("hi", 0.9, 1.1), Word("yes", 1.2, 1.5)]  # frames 11..19
    u_words = [Word("ok", 0.0, 0.3)]  # frames 0..4
    asr_a, tts_a, asr_u = modality_alignment(agent, user, a_words, u_words, vocab=V,
                                             frame_rate=12.5, tokenize=tok)
    frames = V.code_ids(agent[:, 11:19]).T.reshape(-1).tolist()
    asr, at, tts, aa, eot = (V.special(n) for n in ("<|asr|>", "<|at|>", "<|tts|>", "<|aa|>",
                                                     "<|eot|>"))
    assert asr_a.tokens.tolist() == [asr] + frames + [at, 7, 8, 9, eot]
    np.testing.assert_allclose(asr_a.weights, [0] * 18 + [1, 1, 1, 1])
    assert tts_a.tokens.tolist() == [tts, 7, 8, 9, aa] + frames + [eot]
    np.testing.assert_allclose(tts_a.weights, [0] * 5 + [100, 1] * 8 + [1])
    assert asr_u.tokens.tolist()[-3:] == [at, 10, eot]

    (seq,) = half_duplex(agent, user, a_words, u_words, vocab=V, frame_rate=12.5, tokenize=tok)
    ut = V.special("<|ut|>")
    user_frames = V.code_ids(user[:, 0:4]).T.reshape(-1).tolist()
    assert seq.tokens.tolist() == [U] + user_frames + [ut, 10, eot] + \
        [A, 7, 8, 9, aa] + frames + [eot]
    weighted = seq.tokens[seq.weights > 0].tolist()
    assert weighted == [7, 8, 9, aa] + frames + [eot]  # the agent's turn, nothing of the user
