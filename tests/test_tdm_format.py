"""The TDM serialisation and the six dialogue kinds (pure logic, no model)."""
from __future__ import annotations

import json
import random

import pytest

from duplex.tdm import format as F
from duplex.tdm.kinds import KINDS, chat_pairs, first_sentence, make_dialogue

SAMPLE = json.loads(
    open(__import__("duplex.recipes.tdm.data", fromlist=["SAMPLE"]).SAMPLE).readline())["messages"]


class WordCodec:
    """A word-level stand-in tokenizer: each new word gets the next id (from 100)."""

    def __init__(self):
        self.vocab: dict[str, int] = {}

    def encode(self, text: str) -> list[int]:
        return [self.vocab.setdefault(w, 100 + len(self.vocab)) for w in text.split()]

    def decode(self, ids) -> str:
        inv = {i: w for w, i in self.vocab.items()}
        return " ".join(inv[i] for i in ids)


SP = F.SpecialIds(system=1, user=2, assistant=3, idle=4, eos=5, cut=6, bos=None)


def test_render_lays_out_the_reference_example_with_its_loss_mask():
    c = WordCodec()
    A = F.AssistantSlice
    d = F.DuplexDialogue("Be nice.", [
        F.Tick("Can you recommend some", F.IDLE_SLICE),
        F.Tick("English novels to me?", A(tuple(c.encode("Of course! Here are some")), None)),
        F.Tick("", A(tuple(c.encode("English novels across")), F.END_CUT)),
        F.Tick("Actually, movies instead", F.IDLE_SLICE),
        F.Tick(None, A(tuple(c.encode("Sure! Here are some movies")), F.END_EOS)),
    ])
    r = F.render(d, c.encode, SP)
    e = c.encode
    expected = ([1] + e("Be nice.")
                + [2] + e("Can you recommend some") + [3, 4]
                + [2] + e("English novels to me?") + [3] + e("Of course! Here are some")
                + [2, 4, 3] + e("English novels across") + [6]
                + [2] + e("Actually, movies instead") + [3, 4]
                + [2, 4, 3] + e("Sure! Here are some movies") + [5])
    assert r.ids == expected
    # trained: the assistant's words, its <idle> and <eos>; never what it is given or <cut>
    trained = [t for t, m in zip(r.ids, r.mask) if m]
    assert trained == ([4] + e("Of course! Here are some") + e("English novels across") + [4]
                       + e("Sure! Here are some movies") + [5])
    assert r.labels()[: len(e("Be nice.")) + 1] == [-100] * (len(e("Be nice.")) + 1)
    assert [r.ids[s] for s in r.tick_starts] == [2] * 5


def test_bos_goes_first_when_the_tokenizer_uses_one():
    sp = F.SpecialIds(1, 2, 3, 4, 5, 6, bos=9)
    ids, mask = F.render_header("hi", WordCodec().encode, sp)
    assert ids[:2] == [9, 1] and mask == [0] * len(ids)


def test_split_tokens_makes_k_token_slices_and_eos_counts_towards_k():
    slices = F.split_tokens(list(range(23)), 10)
    assert [len(s.tokens) for s in slices] == [10, 10, 3]
    assert [s.end for s in slices] == [None, None, F.END_EOS]
    exact = F.split_tokens(list(range(20)), 10)
    assert exact[-1] == F.AssistantSlice((), F.END_EOS)  # <eos> alone: no room left in slice 2
    F.check_slices([F.Tick("", s) for s in slices], 10)
    with pytest.raises(ValueError, match="more than K"):
        F.check_slices([F.Tick("", slices[0])], 9)


def test_rollback_cuts_the_unspoken_tail_and_silences_later_slices():
    A = F.AssistantSlice
    ticks = [F.Tick("hi", A((1, 2, 3), None)), F.Tick("so", A((4, 5, 6), None)),
             F.Tick("wait", A((7, 8), F.END_EOS))]
    inside, first = F.rollback(ticks, 1)
    assert first == 2 and inside[2].assistant == A((7,), F.END_CUT) and inside[:2] == ticks[:2]
    across, first = F.rollback(ticks, 4)  # 8, 7 and 6, 5 were never played
    assert first == 1
    assert [t.assistant for t in across] == [A((1, 2, 3), None), A((4,), F.END_CUT), F.IDLE_SLICE]
    assert [t.user for t in across] == ["hi", "so", "wait"]  # what the user said stays
    whole_slice, _ = F.rollback(ticks, 5)
    assert whole_slice[1].assistant == A((), F.END_CUT)
    assert F.rollback(ticks, 0) == (ticks, 3)
    with pytest.raises(ValueError, match="only 8"):
        F.rollback(ticks, 9)


def test_split_words_gives_4_to_6_word_user_slices():
    text = " ".join(f"w{i}" for i in range(40))
    pieces = F.split_words(text, random.Random(0))
    assert " ".join(pieces) == text
    assert all(4 <= len(p.split()) <= 6 for p in pieces[:-1])


def _dialogue(kind, seed=0, k=10, messages=SAMPLE, donor=None):
    c = WordCodec()
    d = make_dialogue(messages, kind, encode=c.encode, k=k, rng=random.Random(seed), donor=donor)
    return d, c


def _said(d, c, after: int = 0):
    """The assistant's words, one string per stretch of speech (ended by <eos>, <cut>, <idle>),
    counting only stretches that start at tick `after` or later."""
    out, cur = [], []
    for i, t in enumerate(d.ticks):
        cur += t.assistant.tokens if i >= after else ()
        if t.assistant.end is not None and cur:
            out.append(c.decode(cur))
            cur = []
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_keeps_the_slice_rules(kind):
    donor = [{"role": "user", "content": "What is two plus two?"},
             {"role": "assistant", "content": "Two plus two is four, a classic first sum."}]
    for seed in range(6):
        d, _ = _dialogue(kind, seed, k=7, donor=donor)
        assert d.kind == kind
        F.check_slices(d.ticks, 7)
        for t in d.ticks:  # user slices are 1..6 words (aside from silences)
            assert len(t.user.split()) <= 6
        for i in d.cut_ins:  # the assistant was talking, then stops in the cut-in's tick
            before = d.ticks[i - 1].assistant
            assert (before.tokens and before.end is None) or before.end == F.END_CUT
            assert d.ticks[i].user and d.ticks[i].assistant == F.IDLE_SLICE
            assert d.ticks[i + 1].assistant == F.IDLE_SLICE or not d.ticks[i + 1].user
        for i in d.backchannels:  # and keeps talking through an "mm-hm"
            assert d.ticks[i].assistant.tokens
        if kind == "basic":
            assert not d.cut_ins and not d.backchannels
        elif kind != "back_on_topic":
            assert len(d.cut_ins) == 1


def test_basic_says_every_answer_whole_starting_in_the_users_last_slice():
    d, c = _dialogue("basic", seed=3)
    _, pairs = chat_pairs(SAMPLE)
    assert _said(d, c) == [" ".join(a.split()) for _, a in pairs]
    first_answer = next(i for i, t in enumerate(d.ticks) if t.assistant.tokens)
    assert d.ticks[first_answer].user  # answered in the tick of the question's last words
    assert " ".join(t.user for t in d.ticks[: first_answer + 1] if t.user) == pairs[0][0]


def test_generation_termination_never_speaks_after_the_cut_in():
    d, c = _dialogue("generation_termination", seed=1)
    (cut,) = d.cut_ins
    assert all(t.assistant == F.IDLE_SLICE for t in d.ticks[cut:])
    assert all(not t.assistant.tokens for t in d.ticks[cut:])


def test_cut_in_examples_sometimes_carry_the_servers_cut_marker():
    ends = set()
    for seed in range(12):
        d, _ = _dialogue("generation_termination", seed)
        ends.add(d.ticks[d.cut_ins[0] - 1].assistant.end)
    assert ends == {None, F.END_CUT}


def test_regeneration_says_the_answer_again_or_its_first_sentence():
    _, pairs = chat_pairs(SAMPLE)
    seen = set()
    for seed in range(10):
        d, c = _dialogue("regeneration", seed)
        again = _said(d, c, after=d.cut_ins[0])[0]
        full = {" ".join(a.split()) for _, a in pairs}
        short = {first_sentence(a) for _, a in pairs}
        assert again in full | short
        seen.add("full" if again in full else "short")
    assert seen == {"full", "short"}


def test_dialogue_reset_answers_the_new_question_and_goes_on_with_its_conversation():
    donor = [{"role": "user", "content": "What is two plus two?"},
             {"role": "assistant", "content": "Two plus two is four."},
             {"role": "user", "content": "And three plus three?"},
             {"role": "assistant", "content": "Six."}]
    d, c = _dialogue("dialogue_reset", seed=2, donor=donor)
    cut = d.cut_ins[0]
    assert "What is two plus two?" in " ".join(t.user for t in d.ticks[cut:])
    assert _said(d, c)[-2:] == ["Two plus two is four.", "Six."]
    assert make_dialogue(SAMPLE, "dialogue_reset", encode=WordCodec().encode, k=10,
                         rng=random.Random(0), donor=None) is None


def test_topic_interweaving_answers_the_next_question_then_finishes_the_first():
    d, c = _dialogue("topic_interweaving", seed=0)
    _, pairs = chat_pairs(SAMPLE)
    said = _said(d, c)
    assert said[1] == " ".join(pairs[1][1].split())  # the interjected question's answer
    assert any(said[2].startswith(b) for b in ("Back to", "Now, about"))
    assert (said[0] + said[2]).endswith(pairs[0][1].split()[-1])  # the first answer is finished


def test_back_on_topic_resumes_the_interrupted_answer():
    for seed in range(8):
        d, c = _dialogue("back_on_topic", seed)
        _, pairs = chat_pairs(SAMPLE)
        words = " ".join(_said(d, c)).split()
        assert words[-1] == pairs[-1][1].split()[-1]
        assert pairs[0][1].split()[-1] in words  # the interrupted answer reached its end


def test_chat_pairs_reads_messages_and_rejects_malformed_ones():
    system, pairs = chat_pairs([
        {"role": "system", "content": "S"}, {"role": "user", "content": "a"},
        {"role": "user", "content": "b"}, {"role": "assistant", "content": "c"},
        {"role": "user", "content": "dangling"}])
    assert system == "S" and pairs == [("a b", "c")]
    with pytest.raises(ValueError, match="unknown role"):
        chat_pairs([{"role": "bot", "content": "x"}])
    with pytest.raises(ValueError, match="not a"):
        chat_pairs([{"text": "x"}])
    with pytest.raises(ValueError, match="non-empty list"):
        chat_pairs([])
    with pytest.raises(ValueError, match="unknown dialogue kind"):
        make_dialogue(SAMPLE, "chitchat", encode=str.split, k=10, rng=random.Random(0))
