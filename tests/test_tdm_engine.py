"""The TDM engine on a tiny random model built locally (no downloads):
training and serving share one serialisation, rollback crops exactly the
unspoken tokens, batching across sessions changes nothing, turn mode works
on a plain chat model."""
from __future__ import annotations

import threading

import pytest
import torch
from duplex.models.tdm import DuplexEngine
from duplex.models.tdm.contexts import encode_text
from duplex.models.tdm.loading import load_model
from duplex.models.tiny import ensure_tiny_llm
from duplex.recipes.tdm.data import load_conversations, make_dialogues, to_example

from duplex.config import LLMConfig
from duplex.errors import ModelUnavailable
from duplex.tdm import format as F
from duplex.tdm.kinds import KINDS

K = 6


@pytest.fixture(scope="module")
def tiny(model_cache):
    torch.manual_seed(0)
    path = ensure_tiny_llm(model_cache / "tiny-llm")
    model, tok, _ = load_model(LLMConfig(model=str(path), device="cpu", mode="duplex"))
    return model, tok


def _engine(tiny, **kw) -> DuplexEngine:
    cfg = dict(engine="tdm", model="tiny", mode="duplex", slice_tokens=K, temperature=0.0,
               batch_window_ms=0)
    cfg.update(kw)
    return DuplexEngine(*tiny, LLMConfig(**cfg))


@pytest.fixture(scope="module")
def engine(tiny):
    eng = _engine(tiny)
    yield eng
    eng.shutdown()


def _encode(tok):
    return lambda text: encode_text(tok, text)


def _common(a, b) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def test_loading_adds_the_tdm_tokens_and_grows_the_embeddings(tiny, model_cache):
    model, tok = tiny
    sp = F.SpecialIds.from_tokenizer(tok)
    assert len({sp.system, sp.user, sp.assistant, sp.idle, sp.eos, sp.cut}) == 6
    assert model.get_input_embeddings().weight.shape[0] == len(tok)
    assert model.get_output_embeddings().weight.shape[0] == len(tok)
    # marker text typed by a user is text, not a marker
    assert sp.user not in encode_text(tok, "say <|user|> please")
    with pytest.raises(ModelUnavailable, match="no-such-model"):
        load_model(LLMConfig(model=str(model_cache / "no-such-model"), device="cpu"))


def test_a_training_example_replays_through_the_engine_with_the_same_ids_and_mask(tiny, engine):
    """Teacher-force every slice of rendered training dialogues through the engine.

    Slices the data cut with <cut> are replayed as the server would live:
    the model "says" more, then the unplayed characters are rolled back.
    """
    model, tok = tiny
    sp = F.SpecialIds.from_tokenizer(tok)
    dialogues = make_dialogues(load_conversations("builtin")[:12], tok, k=K, kinds=KINDS, seed=3)
    assert any(t.assistant.end == F.END_CUT for d in dialogues for t in d.ticks)
    assert {d.kind for d in dialogues} == set(KINDS)
    filler = encode_text(tok, " and so on")
    for d in dialogues:
        ex = to_example(d, tok, sp, max_length=10**6)
        sid = engine.open(d.system)
        written: list[int] = []  # context positions the model wrote
        for tick in d.ticks:
            a = tick.assistant
            cut = a.end == F.END_CUT
            end = {F.END_IDLE: [sp.idle], F.END_EOS: [sp.eos]}.get(a.end, [])
            forced = list(a.tokens) + (filler if cut else end)
            deltas: list[str] = []
            res = engine.step(sid, tick.user, forced=forced, on_text=deltas.append)
            assert res.tokens == forced
            ctx = engine.context_ids(sid)
            assert ctx[-len(forced):] == forced
            written += range(len(ctx) - len(forced), len(ctx))
            if cut:  # the filler was never played: roll its characters back
                unplayed = sum(len(x) for x in deltas[-len(filler):])
                assert engine.rollback(sid, unplayed) == len(filler)
                keep = _common(ctx, engine.context_ids(sid))
                written = [p for p in written if p < keep]
        ctx = engine.context_ids(sid)
        assert ctx == ex.input_ids
        assert [int(p in set(written)) for p in range(len(ctx))] == \
            [int(label != -100) for label in ex.labels]
        assert engine.cached_ids(sid) == ctx[:-1]  # the cache holds all but the last token written
        # ... and its keys and values are those of the rendered example
        res = engine.step(sid, "one more", return_scores=True)
        prompt = ex.input_ids + F.render_user("one more", _encode(tok), sp)
        with torch.inference_mode():
            fresh = model(torch.tensor([prompt])).logits[0, -1].float()
        torch.testing.assert_close(res.scores[0], fresh, atol=1e-4, rtol=1e-4)
        engine.close(sid)


def test_rollback_crops_exactly_the_unspoken_tokens_and_the_next_slice_matches_a_fresh_prefill(
        tiny, engine):
    model, tok = tiny
    sp, enc = F.SpecialIds.from_tokenizer(tok), _encode(tok)
    sid = engine.open("You are brief.")
    results = [engine.step(sid, u) for u in ("hello there", None, "tell me more", None)]
    assert all(r.state == "speak" and len(r.tokens) == K for r in results)  # random model: talks
    history, before = engine.history(sid), engine.context_ids(sid)

    # the user heard everything but the last slice and the last 3 characters before it
    unspoken_chars = len(results[-1].text) + 3
    prev = list(results[-2].tokens)
    tail = next(m for m in range(1, K + 1) if len(tok.decode(prev[-m:])) >= 3)
    assert engine.rollback(sid, unspoken_chars) == K + tail

    expected_ticks, _ = F.rollback(history, K + tail)
    assert expected_ticks[-2].assistant == F.AssistantSlice(tuple(prev[:-tail]), F.END_CUT)
    expected = F.render(F.DuplexDialogue("You are brief.", expected_ticks), enc, sp).ids
    assert engine.context_ids(sid) == expected

    res = engine.step(sid, "wait", return_scores=True)
    prompt = expected + F.render_user("wait", enc, sp)
    with torch.inference_mode():
        fresh = model(torch.tensor([prompt])).logits[0, -1].float()
    torch.testing.assert_close(res.scores[0], fresh, atol=1e-4, rtol=1e-4)
    # the cache was cropped, not rebuilt: only the rewritten tail and the new slice were fed
    assert engine.passes[-1] == (1, len(prompt) - _common(before[:-1], expected))
    engine.close(sid)


SCRIPTS = [["hi", "how are you", None, "ok"],
           ["tell me a long story about the sea", None, "more", None],
           [None, None, "okay then", "so"]]


def _sequential(engine):
    sids = [engine.open(f"system {i}") for i in range(len(SCRIPTS))]
    out = {s: [] for s in sids}
    for t in range(len(SCRIPTS[0])):
        for s, script in zip(sids, SCRIPTS):
            out[s].append(engine.step(s, script[t], return_scores=True))
    return list(out.values())


def test_batched_slices_equal_unbatched_ones(engine):
    alone = _sequential(engine)
    assert all(n == 1 for n, _ in list(engine.passes)[-len(SCRIPTS) * len(SCRIPTS[0]):])
    sids = [engine.open(f"system {i}") for i in range(len(SCRIPTS))]
    together = [[] for _ in sids]
    for t in range(len(SCRIPTS[0])):
        results = engine.step_many([(s, script[t]) for s, script in zip(sids, SCRIPTS)],
                                   return_scores=True)
        assert engine.passes[-1][0] == len(SCRIPTS)  # one pass for all sessions
        for row, r in zip(together, results):
            row.append(r)
    for a_rows, b_rows in zip(alone, together):
        for a, b in zip(a_rows, b_rows):
            assert a.tokens == b.tokens and a.text == b.text and a.state == b.state
            for sa, sb in zip(a.scores, b.scores):
                torch.testing.assert_close(sa, sb, atol=1e-4, rtol=1e-4)
    for s in sids:
        engine.close(s)


def test_sessions_stepped_from_worker_threads_get_their_own_results(tiny):
    eng = _engine(tiny, batch_window_ms=50)
    try:
        alone = _sequential(eng)
        sids = [eng.open(f"system {i}") for i in range(len(SCRIPTS))]
        got: dict[int, list] = {i: [] for i in range(len(SCRIPTS))}

        def worker(i):
            for u in SCRIPTS[i]:
                got[i].append(eng.step(sids[i], u))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(SCRIPTS))]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        for i, rows in enumerate(alone):
            assert [r.tokens for r in got[i]] == [r.tokens for r in rows]
    finally:
        eng.shutdown()


def test_text_streams_as_it_decodes(engine):
    sid = engine.open("")
    stream = engine.stream(sid, "hello")
    deltas = list(stream)
    assert len(deltas) == K  # ASCII words: one delta per token
    assert "".join(deltas) == stream.result.text
    assert stream.result.text == engine._sessions[sid].spoken._decode(stream.result.tokens)
    engine.close(sid)


def test_turn_mode_answers_after_the_turn_ends_and_reuses_its_cache(tiny):
    model, tok = tiny
    eng = _engine(tiny, mode="turn", slice_tokens=4, max_new_tokens=10)
    try:
        sid = eng.open("Be brief.")
        first = eng.step(sid, "hello there")
        assert (first.state, first.tokens, first.text) == ("idle", [], "")
        assert not eng.passes  # nothing decoded while the user speaks
        results = [eng.step(sid, "how are you", end_of_turn=True)]
        while results[-1].state == "speak":
            results.append(eng.step(sid))
        assert results[-1].state == "eos" and all(len(r.tokens) <= 4 for r in results)
        written = [t for r in results for t in r.tokens]
        msgs = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": "hello there how are you"}]
        prompt = tok(tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True),
                     add_special_tokens=False)["input_ids"]
        assert eng.context_ids(sid) == prompt + written

        answer = "".join(r.text for r in results)
        assert eng.rollback(sid, 4) >= 1  # the last word was not heard
        heard = eng._sessions[sid].ctx.messages[-1]
        assert heard["role"] == "assistant" and answer.strip().startswith(heard["content"])
        assert len(heard["content"]) <= len(answer.strip()) - 4

        before = eng.cached_ids(sid)
        r = eng.step(sid, "and then?", end_of_turn=True)
        ctx = eng.context_ids(sid)
        new_prompt = ctx[: len(ctx) - len(r.tokens)]
        assert new_prompt[: len(prompt)] == prompt
        # only what differs from the cache is prefilled: the history is not
        assert eng.passes[-1][1] == len(new_prompt) - _common(before, new_prompt)
        assert _common(before, new_prompt) >= len(prompt)
    finally:
        eng.shutdown()


def test_bad_calls_get_clear_errors(engine):
    with pytest.raises(KeyError, match="no open TDM session"):
        engine.step("tdm-nope", "hi")
    sid = engine.open("")
    with pytest.raises(ValueError, match="unspoken_chars"):
        engine.rollback(sid, -1)
    with pytest.raises(TypeError, match="user_slice"):
        engine.step(sid, 42)
    assert engine.rollback(sid, 0) == 0
    engine.close(sid)
    with pytest.raises(KeyError):
        engine.step(sid, "hi")


def test_a_long_session_drops_its_oldest_ticks_and_stays_consistent(tiny):
    model, tok = tiny
    sp, enc = F.SpecialIds.from_tokenizer(tok), _encode(tok)
    eng = _engine(tiny, max_context_tokens=120)
    try:
        sid = eng.open("Stay short.")
        header = F.render_header("Stay short.", enc, sp)[0]
        for i in range(30):
            eng.step(sid, f"word number {i}")
            ctx = eng.context_ids(sid)
            tick = len(F.render_user(f"word number {i}", enc, sp)) + K
            assert len(ctx) <= 120 + tick and ctx[: len(header)] == header
        assert eng.history(sid)[-1].user == "word number 29"
        assert len(eng.history(sid)) < 30  # the oldest ticks are gone
        ctx = eng.context_ids(sid)
        assert ctx == F.render(F.DuplexDialogue("Stay short.", eng.history(sid)), enc, sp).ids
        res = eng.step(sid, "last", return_scores=True)
        with torch.inference_mode():
            prompt = ctx + F.render_user("last", enc, sp)
            fresh = model(torch.tensor([prompt])).logits[0, -1].float()
        torch.testing.assert_close(res.scores[0], fresh, atol=1e-4, rtol=1e-4)
    finally:
        eng.shutdown()
