"""VAP event extraction on constructed voice activity, and the M2/M3 formulas."""
import numpy as np
import pytest

from duplex.vap import metrics
from duplex.vap.events import extract_events, fill_pauses

S = 50  # frames per second


def build(n_s, *segs):
    """segs: (speaker, start_s, end_s)."""
    va = np.zeros((int(n_s * S), 2), np.float32)
    for spk, a, b in segs:
        va[int(round(a * S)): int(round(b * S)), spk] = 1
    return va


def rows(ev, kind):
    return [tuple(r) for r in ev[kind].tolist()]


def test_shift_scored_window_and_prediction_region():
    # A talks 0-5 s, silence 0.4 s, B talks 5.4-8 s
    ev = extract_events(build(10, (0, 0, 5), (1, 5.4, 8)))
    assert rows(ev, "shift") == [(252, 262, 0)]  # [t_sil + 0.05, t_sil + 0.25] s, previous speaker 0
    assert rows(ev, "hold") == []
    assert rows(ev, "pred_shift") == [(225, 250, 0)]  # last 0.5 s of A's speech
    assert rows(ev, "long") == [(270, 280, 1)]  # first 0.2 s of B's >= 1 s onset


def test_hold_needs_only_one_speaker_around_it():
    ev = extract_events(build(10, (0, 0, 5), (0, 5.5, 8)))
    assert rows(ev, "hold") == [(252, 262, 0)] and rows(ev, "shift") == []
    assert rows(ev, "pred_hold") == [(225, 250, 0)]
    # the other speaker active in the second before the silence: no event
    ev = extract_events(build(10, (0, 0, 5), (1, 4.5, 4.7), (0, 5.5, 8)))
    assert rows(ev, "hold") == []


def test_silence_shorter_than_the_window_or_without_context_is_no_event():
    assert rows(extract_events(build(10, (0, 0, 5), (1, 5.2, 8))), "shift") == []  # 0.2 s < 0.25 s
    assert rows(extract_events(build(10, (0, 0.5, 2.5), (1, 2.9, 8))), "shift") == []  # < 3 s context
    # the next speaker must then talk alone for 1 s
    assert rows(extract_events(build(10, (0, 0, 5), (1, 5.4, 6.0))), "shift") == []


def test_pause_filling_makes_earlier_pauses_count_as_activity():
    va = build(10, (0, 0, 4.6), (0, 4.8, 5), (1, 5.4, 8))  # A pauses 0.2 s inside the last second
    assert fill_pauses(va)[235:240, 0].all()
    assert rows(extract_events(va), "shift") == [(252, 262, 0)]
    # but then A's last stretch (0.2 s) is too short for a shift-prediction region
    assert rows(extract_events(va), "pred_shift") == []


def test_backchannel_short_onset_and_negatives():
    # A holds the floor 0-12 s; B says "mm-hm" at 6.0-6.4 s
    ev = extract_events(build(14, (0, 0, 12), (1, 6.0, 6.4)))
    assert rows(ev, "backchannel") == [(300, 320, 1)]
    assert rows(ev, "short") == [(300, 310, 1)]
    assert rows(ev, "pred_backchannel") == [(275, 300, 1)]
    neg = ev["pred_backchannel_neg"]
    assert len(neg) and (neg[:, 2] == 1).all()  # B is the silent listener
    # longer than 1 s, or B talks again within 2 s: not a backchannel
    assert rows(extract_events(build(14, (0, 0, 12), (1, 6.0, 7.2))), "backchannel") == []
    assert rows(extract_events(build(14, (0, 0, 12), (1, 6.0, 6.4), (1, 7.0, 7.3))), "backchannel") == []
    # nobody else holding the floor: not a backchannel
    assert rows(extract_events(build(14, (1, 6.0, 6.4))), "backchannel") == []


def test_task_scores_take_the_right_speaker():
    va = build(10, (0, 0, 5), (1, 5.4, 8))
    ev = extract_events(va)
    n = len(va)
    p_now = np.tile([0.2, 0.8], (n, 1))  # speaker 1 projected -> P(shift) after speaker 0 = 0.8
    probs = {"p_now": p_now, "p_future": p_now, "p_bc": np.zeros((n, 2))}
    s, y = metrics.task_scores(ev, probs)["shift_hold"]
    assert s.tolist() == pytest.approx([0.8]) and y.tolist() == [1]


def test_balanced_accuracy_and_weighted_f1_by_hand():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    pred = np.array([1, 1, 1, 0, 0, 0, 0, 0, 1, 1])
    # recall shift 3/4, recall hold 4/6
    assert metrics.balanced_accuracy(pred, y) == pytest.approx((3 / 4 + 4 / 6) / 2)
    f1_shift = 2 * 3 / (2 * 3 + 2 + 1)
    f1_hold = 2 * 4 / (2 * 4 + 1 + 2)
    assert metrics.weighted_f1(pred, y) == pytest.approx((4 * f1_shift + 6 * f1_hold) / 10)


def test_auc_and_threshold():
    s = np.array([0.1, 0.4, 0.35, 0.8])
    y = np.array([0, 0, 1, 1])
    assert metrics.auc(s, y) == pytest.approx(0.75)
    assert metrics.summarize(s, y, 0.5)["bacc"] == pytest.approx(0.75)
    t = metrics.best_threshold(s, y)
    assert metrics.balanced_accuracy(s > t, y) >= 0.75
