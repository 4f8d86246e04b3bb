"""The VAP turn-taking policy.

First with scripted projections (the policy's own logic, whatever the model
says), then with the shipped checkpoint on constructed voice activity and on
real Silero VAD over espeak speech.
"""
from dataclasses import replace

import numpy as np
import pytest

from duplex.config import TurnConfig
from duplex.turn.base import Frame, TurnEventKind as K, VapOutput
from duplex.turn.vap_policy import VAPPolicy

F = 0.02


def vap(p_shift=0.5, p_user_future=0.3, p_bc_user=0.0, p_bc_agent=0.0):
    return VapOutput(p_now=(1 - p_shift, p_shift), p_future=(p_user_future, 1 - p_user_future),
                     p_bc=(p_bc_user, p_bc_agent), p_backchannel=p_bc_user)


def run(policy, script, t0=0.0):
    """script: list of (seconds, p_user, agent_active, VapOutput|None) from t0 on;
    returns [(kind, t, info)]."""
    out, t = [], t0
    for dur, p, agent, v in script:
        for _ in range(int(round(dur / F))):
            t += F
            out += [(e.kind, round(e.t, 2), e.info) for e in policy.update(Frame(t, p, agent, v))]
    return out


def kinds(events):
    return [k for k, _, _ in events]


def test_yields_on_a_projected_shift_after_min_gap():
    cfg = TurnConfig(min_gap_ms=100)
    ev = run(VAPPolicy(cfg), [(1.0, 0.9, False, vap(0.1)), (1.0, 0.0, False, vap(0.9))])
    eot = [e for e in ev if e[0] == K.END_OF_TURN]
    assert len(eot) == 1 and eot[0][2]["reason"] == "vap_shift"
    assert eot[0][1] == pytest.approx(1.10)  # 100 ms into the silence
    assert kinds(ev)[:2] == [K.SPEECH_START, K.SPEECH_END]


def test_uncertain_silence_ends_the_turn_after_vap_end_silence():
    cfg = TurnConfig(shift_threshold=0.6, hold_threshold=0.2, vap_end_silence_ms=600)
    ev = run(VAPPolicy(cfg), [(1.0, 0.9, False, vap(0.1)), (1.0, 0.0, False, vap(0.4))])
    eot = [e for e in ev if e[0] == K.END_OF_TURN]
    assert len(eot) == 1 and eot[0][2]["reason"] == "vap_silence"
    assert eot[0][1] == pytest.approx(1.6)


def test_waits_through_a_projected_hold_and_keeps_a_safety_net():
    cfg = TurnConfig(max_silence_ms=1200, hold_threshold=0.3)
    ev = run(VAPPolicy(cfg), [(1.0, 0.9, False, vap(0.1)), (0.8, 0.0, False, vap(0.2)),
                              (1.0, 0.9, False, vap(0.1)), (2.0, 0.0, False, vap(0.2))])
    eot = [e for e in ev if e[0] == K.END_OF_TURN]
    assert len(eot) == 1 and eot[0][2]["reason"] == "max_silence"
    assert eot[0][1] == pytest.approx(2.8 + 1.2)


def test_short_overlap_is_a_backchannel_and_the_agent_resumes():
    ev = run(VAPPolicy(TurnConfig()), [(1.0, 0.0, True, vap(0.9, 0.1)), (0.4, 0.9, True, vap(0.9, 0.2)),
                                       (1.0, 0.0, True, vap(0.9, 0.1))])
    assert kinds(ev) == [K.SPEECH_START, K.PAUSE_AGENT, K.SPEECH_END, K.BACKCHANNEL, K.RESUME_AGENT]
    assert ev[0][2]["overlap"] is True
    # the agent resumes only after resume_silence_ms (300) of quiet after the sound (ends 1.4 s)
    assert ev[4][1] == pytest.approx(1.4 + 0.3) and ev[3][2]["duration_ms"] == 400


def test_a_pause_inside_a_barge_in_does_not_let_the_agent_talk_over_the_rest():
    """'Sorry, | tell me about Venice': the second part continues the first overlap."""
    cfg = TurnConfig(backchannel_max_ms=1000, resume_silence_ms=300)
    ev = run(VAPPolicy(cfg), [(1.0, 0.0, True, vap(0.9, 0.1)), (0.4, 0.9, True, vap(0.9, 0.2)),
                              (0.2, 0.0, True, vap(0.9, 0.2)), (1.5, 0.9, True, vap(0.9, 0.2))])
    assert K.RESUME_AGENT not in kinds(ev) and K.BACKCHANNEL not in kinds(ev)
    assert kinds(ev)[-1] == K.INTERRUPT and ev[-1][2]["reason"] == "long_overlap"
    assert ev[-1][1] == pytest.approx(1.0)  # the barge-in starts at the first onset
    assert kinds(ev).count(K.PAUSE_AGENT) == 1  # held throughout, never resumed in between


def test_a_sound_the_model_calls_a_backchannel_does_not_even_pause_the_agent():
    ev = run(VAPPolicy(TurnConfig()), [(1.0, 0.0, True, vap(0.9)), (0.4, 0.9, True, vap(0.9, 0.2, 0.8)),
                                       (1.0, 0.0, True, vap(0.9))])
    assert kinds(ev) == [K.SPEECH_START, K.SPEECH_END, K.BACKCHANNEL]


def test_projected_user_turn_interrupts_early_and_long_overlap_interrupts_anyway():
    cfg = TurnConfig(vap_interrupt_ms=400, backchannel_max_ms=1000)
    ev = run(VAPPolicy(cfg), [(1.0, 0.0, True, vap(0.9)), (2.0, 0.9, True, vap(0.5, 0.8))])
    assert kinds(ev) == [K.SPEECH_START, K.PAUSE_AGENT, K.INTERRUPT]
    assert ev[2][2]["reason"] == "vap" and ev[2][1] == pytest.approx(1.0)  # onset of the speech
    ev = run(VAPPolicy(cfg), [(1.0, 0.0, True, vap(0.9)), (2.0, 0.9, True, vap(0.5, 0.2))])
    assert kinds(ev) == [K.SPEECH_START, K.PAUSE_AGENT, K.INTERRUPT]
    assert ev[2][2]["reason"] == "long_overlap"
    # a short sound after which the model projects the user's turn is a turn too
    ev = run(VAPPolicy(cfg), [(1.0, 0.0, True, vap(0.9)), (0.3, 0.9, True, vap(0.5, 0.3)),
                              (0.3, 0.0, True, vap(0.5, 0.9))])
    assert kinds(ev)[-1] == K.INTERRUPT and K.BACKCHANNEL not in kinds(ev)


def test_no_pause_when_configured_off():
    cfg = TurnConfig(pause_on_overlap=False)
    ev = run(VAPPolicy(cfg), [(1.0, 0.0, True, vap(0.9)), (0.4, 0.9, True, vap(0.9, 0.2)),
                              (1.0, 0.0, True, vap(0.9))])
    assert kinds(ev) == [K.SPEECH_START, K.SPEECH_END, K.BACKCHANNEL]


def test_backchannel_opportunities_are_spaced():
    cfg = TurnConfig(bc_opportunity_threshold=0.35, bc_opportunity_gap_ms=4000)  # explicit: not defaults
    ev = run(VAPPolicy(cfg), [(1.0, 0.9, False, vap(0.1)), (6.0, 0.9, False, vap(0.1, p_bc_agent=0.5))])
    opp = [t for k, t, _ in ev if k == K.BACKCHANNEL_OPPORTUNITY]
    assert len(opp) == 2 and opp[1] - opp[0] == pytest.approx(4.0)


def test_without_projections_it_falls_back_to_a_silence_threshold():
    cfg = TurnConfig(end_silence_ms=500)
    ev = run(VAPPolicy(cfg), [(1.0, 0.9, False, None), (1.0, 0.0, False, None)])
    eot = [e for e in ev if e[0] == K.END_OF_TURN]
    assert eot[0][2]["reason"] == "silence" and eot[0][1] == pytest.approx(1.5)


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="shift_threshold"):
        VAPPolicy(TurnConfig(shift_threshold=1.5))
    with pytest.raises(ValueError, match="min_gap_ms"):
        VAPPolicy(TurnConfig(min_gap_ms=2000, max_silence_ms=1000))


# ---------------------------------------------------------------- shipped model
@pytest.fixture(scope="module")
def shipped():
    from duplex.models.vap.runtime import VAPRuntime

    return VAPRuntime.load(None)


def segs(seconds, *spans):
    x = np.zeros(int(seconds * 50), np.float32)
    for a, b in spans:
        x[int(a * 50): int(b * 50)] = 1.0
    return x


def replay(rt, policy, p_user, agent):
    """Feed a stream frame by frame through the runtime and the policy, as the server does."""
    stream = rt.stream(policy.cfg.vap_context_s)
    out = []
    for i, (p, a) in enumerate(zip(p_user, agent)):
        frame = Frame((i + 1) * F, float(p), bool(a), stream.step(float(p), bool(a)))
        out += [(e.kind, round(e.t, 2), e.info) for e in policy.update(frame)]
    return out


# the patient voice-activity-only setting of the VAP report (the default is paced like a
# 500 ms timeout and relies on the words to wait through unfinished sentences)
PATIENT = TurnConfig(shift_threshold=0.6, hold_threshold=0.2, vap_end_silence_ms=700, lexical=False)


def test_shipped_model_waits_through_a_predicted_hold(shipped):
    # the user is in the middle of a long turn (the agent backchannels now and then)
    # and pauses for 0.8 s at 9.0 s: longer than the 500 ms a silence timeout waits
    user = segs(11, (0, 2.0), (2.3, 4.5), (4.8, 6.9), (7.2, 9.0), (9.8, 11))
    agent = segs(11, (3.0, 3.3), (6.0, 6.3))
    ev = replay(shipped, VAPPolicy(PATIENT), user, agent)
    assert not [e for e in ev if e[0] == K.END_OF_TURN and 9.0 < e[1] < 9.8]
    from duplex.turn.vad_policy import VADPolicy

    timeout = VADPolicy(TurnConfig(end_silence_ms=500))  # where a silence timeout would answer
    ev_vad = [(e.kind, e.t) for i, (p, a) in enumerate(zip(user, agent))
              for e in timeout.update(Frame((i + 1) * F, float(p), bool(a)))]
    assert [t for k, t in ev_vad if k == K.END_OF_TURN and 9.0 < t < 9.8]


def test_shipped_model_yields_early_on_a_predicted_shift(shipped):
    # the agent spoke for 4 s, the user answered with a short "sure." that ended at 4.8 s
    cfg = TurnConfig()
    user, agent = segs(8, (4.3, 4.8)), segs(8, (0, 4.0))
    ev = replay(shipped, VAPPolicy(cfg), user, agent)
    eot = [e for e in ev if e[0] == K.END_OF_TURN]
    assert eot and eot[0][2]["reason"] == "vap_shift"
    assert eot[0][1] - 4.8 < 0.3  # long before a 500 ms timeout would answer


def test_shipped_model_lets_the_agent_talk_through_mm_hm_but_not_a_barge_in(shipped):
    agent = segs(8, (0, 8))
    ev = replay(shipped, VAPPolicy(TurnConfig()), segs(8, (3.0, 3.3)), agent)
    assert K.INTERRUPT not in kinds(ev) and K.BACKCHANNEL in kinds(ev)
    if K.PAUSE_AGENT in kinds(ev):
        assert kinds(ev).index(K.RESUME_AGENT) > kinds(ev).index(K.PAUSE_AGENT)
    ev = replay(shipped, VAPPolicy(TurnConfig()), segs(8, (3.0, 6.0)), agent)
    assert K.INTERRUPT in kinds(ev) and K.BACKCHANNEL not in kinds(ev)


@pytest.mark.slow
def test_real_vad_on_spoken_mm_hm_and_a_real_barge_in(shipped):
    """Silero VAD on espeak speech in the user's channel while the agent talks."""
    from conftest import say, silence
    from duplex.models.vad_silero import SileroVAD

    for text, barge_in in (("mm-hm", False), ("excuse me I have a question about that part", True)):
        audio = np.concatenate([silence(2.0), say(text), silence(2.0)])
        p_user = SileroVAD().process(audio)
        assert (p_user > 0.5).sum() >= 10  # the VAD did hear it
        ev = replay(shipped, VAPPolicy(TurnConfig()), p_user, np.ones(len(p_user)))
        assert (K.INTERRUPT in kinds(ev)) == barge_in, (text, kinds(ev))
        assert (K.BACKCHANNEL in kinds(ev)) == (not barge_in), (text, kinds(ev))


# ---------------------------------------------------------------- with words
def words_model():
    """A hand-written lexical model: a turn ending in "for" is unfinished, "paris" finished."""
    from duplex.turn.lexical import LexicalTurnEnd

    return LexicalTurnEnd({"l1=for": -4.0, "l1=paris": 3.0}, bias=-1.0)


def test_unfinished_words_hold_the_floor_past_a_projected_shift_and_the_safety_net():
    cfg = TurnConfig(words_hold_threshold=0.1, unfinished_max_silence_ms=2000, max_silence_ms=1200)
    policy = VAPPolicy(cfg, words=words_model())
    ev = run(policy, [(1.0, 0.9, False, vap(0.1))])
    policy.hear("I would like to book a table for")
    ev += run(policy, [(3.0, 0.0, False, vap(0.9))], t0=1.0)
    eot = [e for e in ev if e[0] == K.END_OF_TURN]
    assert len(eot) == 1 and eot[0][2]["reason"] == "max_silence"
    assert eot[0][1] == pytest.approx(1.0 + 2.0) and eot[0][2]["p_words"] < 0.1


def test_finished_words_answer_after_finished_gap_unless_vap_projects_a_hold():
    cfg = TurnConfig(words_shift_threshold=0.8, finished_gap_ms=200, hold_threshold=0.2,
                     shift_threshold=0.9, vap_end_silence_ms=700)
    policy = VAPPolicy(cfg, words=words_model())
    ev = run(policy, [(1.0, 0.9, False, vap(0.1))])
    policy.hear("what is the weather like in Paris?")
    ev += run(policy, [(1.0, 0.0, False, vap(0.5))], t0=1.0)
    eot = [e for e in ev if e[0] == K.END_OF_TURN]
    assert eot[0][2]["reason"] == "words_finished" and eot[0][1] == pytest.approx(1.2)
    # the same words, but the model projects a hold: no early answer
    policy = VAPPolicy(cfg, words=words_model())
    run(policy, [(1.0, 0.9, False, vap(0.1))])
    policy.hear("what is the weather like in Paris?")
    ev = run(policy, [(1.0, 0.0, False, vap(0.1))], t0=1.0)
    assert [e[0] for e in ev if e[0] == K.END_OF_TURN] == []


def test_words_belong_to_one_turn_and_can_be_switched_off():
    cfg = TurnConfig(words_hold_threshold=0.1, shift_threshold=0.6, hold_threshold=0.2,
                     vap_end_silence_ms=700)
    policy = VAPPolicy(cfg, words=words_model())
    run(policy, [(1.0, 0.9, False, vap(0.1))])
    policy.hear("a table for")
    first = run(policy, [(2.5, 0.0, False, vap(0.5))], t0=1.0)
    assert [e[2]["reason"] for e in first if e[0] == K.END_OF_TURN] == ["max_silence"]
    # the next turn has no words yet: the VAP rules apply (700 ms, p_shift 0.5 >= 0.2)
    ev = run(policy, [(1.0, 0.9, False, vap(0.1)), (1.0, 0.0, False, vap(0.5))], t0=3.5)
    assert [e[2]["reason"] for e in ev if e[0] == K.END_OF_TURN] == ["vap_silence"]
    off = VAPPolicy(replace(cfg, lexical=False), words=words_model())
    run(off, [(1.0, 0.9, False, vap(0.1))])
    off.hear("a table for")
    ev = run(off, [(1.0, 0.0, False, vap(0.5))], t0=1.0)
    assert [e[2]["reason"] for e in ev if e[0] == K.END_OF_TURN] == ["vap_silence"]


def test_shipped_words_wait_through_an_unfinished_sentence_and_answer_a_finished_one(shipped):
    """Default config, shipped VAP and lexical weights: the user stops for 1.5 s."""
    from duplex.models.registry import load_lexical
    from duplex.config import load_config

    cfg = load_config("default")
    user, agent = segs(5, (0.5, 2.2), (3.7, 4.5)), segs(5)
    for words, waits in (("I would like to book a table for", True),
                         ("can you tell me how to get to", True),
                         ("what is the weather like in Paris", False)):
        policy = VAPPolicy(cfg.turn, cfg.vad, words=load_lexical(cfg))
        stream, out = shipped.stream(cfg.turn.vap_context_s), []
        for i, (p, a) in enumerate(zip(user, agent)):
            if i == 100:  # 2.0 s: the partial transcript arrives while the user still talks
                policy.hear(words)
            frame = Frame((i + 1) * F, float(p), bool(a), stream.step(float(p), bool(a)))
            out += [(e.kind, e.t, e.info) for e in policy.update(frame)]
        early = [e for e in out if e[0] == K.END_OF_TURN and e[1] < 3.7]
        assert (not early) == waits, (words, early)
        if not waits:
            assert early[0][1] - 2.2 <= 0.5 + 1e-6  # at the latest the 500 ms a timeout waits
