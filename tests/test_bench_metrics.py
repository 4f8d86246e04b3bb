"""Benchmark metrics (REFERENCE §5, M4-M9) on constructed timelines with
hand-computed answers, and the agent timeline built from events + audio."""
import numpy as np
import pytest
from duplex.recipes.bench.fdb import Sample
from duplex.recipes.bench.runner import score

from duplex.bench import metrics as M
from duplex.bench.metrics import Word
from duplex.bench.timeline import (
    agent_timeline,
    decisions_agree,
    output_json,
    parse_responses,
    place_words,
    turn_decisions,
    voiced_segments,
    words_from_output_json,
)

RATE = 24_000


def words(*spans, text="w"):
    return [Word(f"{text}{i}", s, e) for i, (s, e) in enumerate(spans)]


def track(duration, *bursts, rate=RATE):
    """Silence with a 200 Hz tone over each (start, end)."""
    out = np.zeros(int(duration * rate), np.float32)
    for s, e in bursts:
        a, b = round(s * rate), round(e * rate)
        out[a:b] = 0.3 * np.sin(2 * np.pi * 200 * np.arange(b - a) / rate)
    return out


# ---------------------------------------------------------------- M4 / M5
def test_take_over_needs_a_second_of_speech_or_more_than_three_words():
    assert M.take_over([]) == 0
    assert M.take_over(words((0.0, 0.3), (0.3, 0.6), (0.6, 0.9))) == 0  # 3 words, 0.9 s
    assert M.take_over(words((0.0, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 0.9))) == 1  # 4 words
    assert M.take_over(words((0.0, 0.4), (0.6, 1.0))) == 1  # spans exactly 1 s
    assert M.tor([1, 0, 0, 1]) == 0.5 and M.tor([]) is None


def test_a_known_300_ms_response_has_latency_0_300():
    reply = words((3.3, 3.6), (3.7, 4.0), (4.1, 4.6))
    assert M.turn_latency(reply, turn_end=3.0) == pytest.approx(0.300)
    early = words((2.8, 3.2), (3.3, 4.0))  # started before the user finished: clamped to 0
    assert M.turn_latency(early, turn_end=3.0) == 0.0
    assert M.turn_latency(words((3.3, 3.5)), turn_end=3.0) is None  # no take-over, no latency


def test_eva_turn_score_is_piecewise_linear_in_latency():
    cases = {-1.0: 0.0, -0.5: 0.0, -0.25: 0.25, 0.0: 0.5, 0.25: 0.75, 0.5: 1.0, 1.2: 1.0,
             2.0: 1.0, 2.75: 0.5, 3.5: 0.0, 9.0: 0.0}
    for latency, expected in cases.items():
        assert M.eva_turn_score(latency) == pytest.approx(expected), latency
    assert M.eva_turn_score(None) == 0.0


# ---------------------------------------------------------------- M6 / M7 / M9
def test_short_agent_sounds_are_backchannels_and_longer_ones_take_the_floor():
    mmhm = [(2.0, 2.4)]
    bc = M.backchannel_stats(mmhm, words((2.0, 2.4), text="mmhm"), output_s=10.0)
    assert (bc.to, bc.count, bc.frequency) == (0, 1, pytest.approx(0.1))
    three_words = M.backchannel_stats([(2.0, 2.8)], words((2.0, 2.2), (2.3, 2.5), (2.6, 2.8)), 10.0)
    assert (three_words.to, three_words.count) == (1, 0)
    slow = M.backchannel_stats([(1.0, 2.5)], words((1.0, 1.5), (2.0, 2.5)), 10.0)  # 1.5 s, 2 words
    assert slow.to == 1
    long = M.backchannel_stats([(1.0, 4.5), (6.0, 6.3)], [], 10.0)
    assert (long.to, long.count) == (1, 1)
    with pytest.raises(ValueError):
        M.backchannel_stats([], [], 0.0)


def test_stop_and_restart_latency_of_an_interruption():
    agent = [(3.0, 6.0), (7.6, 9.0)]
    assert M.stop_latency(agent, user_start=5.0) == pytest.approx(1.0)
    assert M.restart_latency(agent, 5.0, user_end=7.0) == pytest.approx(0.6)
    assert M.stop_latency(agent, user_start=6.5) is None  # silent at the onset
    assert M.restart_latency(agent, 6.5, 7.0) == pytest.approx(0.6)
    assert M.restart_latency([(3.0, 6.0)], 5.0, 7.0) is None


def test_rubric_pass_rate_and_score():
    s = M.rubric_scores([[True, True], [True, False], [False, False]])
    assert s == {"n": 3, "apr": pytest.approx(1 / 3), "ars": pytest.approx(0.5)}
    assert M.rubric_scores([])["apr"] is None


def test_summaries_use_only_defined_values():
    s = M.summarize([None, *range(1, 11)])
    assert s == {"n": 10, "mean": 5.5, "median": 5.5, "p90": pytest.approx(9.1)}
    assert M.summarize([None])["median"] is None


# ---------------------------------------------------------------- timelines
def test_voiced_segments_bridge_short_gaps():
    t = track(5.0, (1.0, 1.5), (1.6, 2.0), (3.0, 3.4))
    assert voiced_segments(t, RATE) == [pytest.approx((1.0, 2.0)), pytest.approx((3.0, 3.4))]
    assert voiced_segments(np.zeros(RATE, np.float32), RATE) == []


def test_words_share_the_voiced_time_by_length():
    ws = place_words("ab cd", [(0.0, 1.0)])
    assert [w.text for w in ws] == ["ab", "cd"]
    assert (ws[0].start, ws[0].end) == pytest.approx((0.0, 1 / 3))
    assert (ws[1].start, ws[1].end) == pytest.approx((0.5, 5 / 6))
    split = place_words("ab cd", [(0.0, 0.5), (2.0, 2.5)])  # the second word starts after the gap
    assert split[1].start == pytest.approx(2.0)
    assert place_words("... !", [(0.0, 1.0)]) == [] and place_words("hi", []) == []


def ev(kind, **kw):
    return {"type": kind, **kw}


def test_agent_words_follow_what_was_heard_of_each_response():
    events = [
        (0.9, ev("response.created", response={"id": "r1", "status": "in_progress"})),
        (0.9, ev("response.output_audio_transcript.delta", response_id="r1", item_id="i1",
                 delta="hello there friend of mine")),
        (1.0, ev("output_audio_buffer.started", response_id="r1", item_id="i1")),
        (1.8, ev("response.interrupted", response_id="r1", item_id="i1", played_ms=800)),
        (1.8, ev("conversation.item.truncated", item_id="i1", transcript="hello there")),
        (1.8, ev("response.done", response={"id": "r1", "status": "cancelled"})),
        (2.9, ev("response.created", response={"id": "r2", "status": "in_progress"})),
        (2.9, ev("response.output_audio_transcript.delta", response_id="r2", item_id="i2", delta="ok")),
        (3.0, ev("output_audio_buffer.started", response_id="r2", item_id="i2")),
        (3.5, ev("response.output_audio_transcript.done", response_id="r2", item_id="i2",
                 transcript="ok sure")),
    ]
    tl = agent_timeline(events, track(5.0, (1.0, 1.8), (3.0, 4.0)), RATE)
    assert [w.text for w in tl.words] == ["hello", "there", "ok", "sure"]
    assert tl.words[0].start == pytest.approx(1.0) and tl.words[1].end <= 1.8 + 1e-9
    assert tl.words[2].start == pytest.approx(3.0) and tl.words[3].end <= 4.0 + 1e-9
    r1, r2 = parse_responses(events)
    assert (r1.status, r1.heard_text, r2.heard_text) == ("cancelled", "hello there", "ok sure")
    assert [w.text for w in tl.cropped(2.0).words] == ["hello", "there"]


def test_output_json_round_trips_in_the_fdb_format():
    ws = words((1.0, 1.25), (1.5, 2.0))
    data = output_json(ws)
    assert data == {"text": "w0 w1", "chunks": [{"text": "w0", "timestamp": [1.0, 1.25]},
                                                {"text": "w1", "timestamp": [1.5, 2.0]}]}
    assert words_from_output_json(data) == ws
    with pytest.raises(ValueError):
        words_from_output_json({"text": "no chunks"})


def test_turn_decisions_of_two_runs_are_compared_within_a_frame():
    a = [(0.7, ev("input_audio_buffer.speech_started", audio_start_ms=540)),
         (2.8, ev("input_audio_buffer.speech_stopped", audio_end_ms=2780)),
         (3.3, ev("input_audio_buffer.committed")),
         (3.4, ev("response.created", response={"id": "r"}))]
    b = list(a)
    b[0] = (0.75, ev("input_audio_buffer.speech_started", audio_start_ms=560))
    assert decisions_agree(turn_decisions(a), turn_decisions(b)) == []
    b[0] = (0.75, ev("input_audio_buffer.speech_started", audio_start_ms=900))
    assert decisions_agree(turn_decisions(a), turn_decisions(b))
    assert decisions_agree(turn_decisions(a), turn_decisions(a[:3]))  # no response in one run


# ---------------------------------------------------------------- per-task scoring
def scored(task, spans, events, agent_bursts, duration=10.0):
    tl = agent_timeline(events, track(duration + 2, *agent_bursts), RATE)
    sample = Sample(task, __import__("pathlib").Path(f"/x/{task}"), spans=spans)
    return score(sample, tl, duration)


def reply(t_start, text, rid="r1"):
    return [(t_start - 0.1, ev("response.created", response={"id": rid})),
            (t_start - 0.1, ev("response.output_audio_transcript.delta", response_id=rid, item_id="i" + rid,
                               delta=text)),
            (t_start, ev("output_audio_buffer.started", response_id=rid, item_id="i" + rid))]


def test_turn_taking_sample_with_a_300_ms_answer():
    res = scored("turn_taking", [(3.0, 10.0)], reply(3.3, "sure the museum opens at ten"), [(3.3, 5.3)])
    assert res["to"] == 1 and res["latency_s"] == pytest.approx(0.300)
    assert res["eva_score"] == pytest.approx(0.8)


def test_an_agent_that_talks_through_a_pause_takes_over():
    res = scored("pause", [(2.0, 3.5)], reply(2.6, "yes of course I can help with that"), [(2.6, 4.6)])
    assert res["to"] == 1
    quiet = scored("pause", [(2.0, 3.5)], [], [])
    assert quiet["to"] == 0


def test_interruption_sample_scores_what_follows_the_interruption():
    events = reply(3.0, "rome was founded long ago by two brothers") + reply(8.6, "venice is built on water", "r2")
    res = scored("interruption", [(5.0, 8.0)], events, [(3.0, 5.26), (8.6, 9.8)])  # on the 20 ms frame grid
    assert res["stop_latency_s"] == pytest.approx(0.26)
    assert res["response_latency_s"] == pytest.approx(0.6)
    assert res["to"] == 1 and res["latency_s"] == pytest.approx(0.6)
    assert res["agent_text"].startswith("rome")  # the whole output is kept, scored after 8.0


def test_backchannel_sample_counts_agent_backchannels_per_second():
    events = reply(3.0, "mhm") + reply(6.0, "yeah", "r2")
    res = scored("backchannel", [(0.5, 2.9), (3.5, 5.8)], events, [(3.0, 3.4), (6.0, 6.3)])
    assert (res["to"], res["backchannels"]) == (0, 2)
    assert res["frequency"] == pytest.approx(0.2)
