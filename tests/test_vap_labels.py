"""VAP projection labels (bins, 8-bit classes) and M1, against hand-computed cases."""
import numpy as np
import pytest

from duplex.vap import labels as L


def va_with(n=120, spk0=(), spk1=()):
    va = np.zeros((n, 2), np.float32)
    for a, b in spk0:
        va[a:b, 0] = 1
    for a, b in spk1:
        va[a:b, 1] = 1
    return va


def test_bins_cover_0_02_06_12_20_seconds_at_50hz():
    assert L.bin_frames().tolist() == [0, 10, 30, 60, 100]
    assert L.horizon_frames() == 100
    assert L.N_CLASSES == 256


def test_only_frames_with_a_full_horizon_get_labels():
    assert L.projection_labels(np.zeros((100, 2))).shape == (0,)
    assert L.projection_labels(np.zeros((130, 2))).shape == (30,)


def test_bins_look_at_the_frames_after_the_current_one():
    # speaker 0 voiced in frames 1..10: for frame 0 that is exactly bin 0
    lab = L.projection_labels(va_with(spk0=[(1, 11)]))
    assert lab[0] == 0b1  # bit 0: speaker 0, bin 0
    # for frame 1, bin 0 = frames 2..11: 9 of 10 voiced -> active; bin 1 = 12..31: silent
    assert lab[1] == 0b1
    # frame 5: bin 0 = frames 6..15, 5 of 10 voiced -> exactly 50 % is active
    assert lab[5] == 0b1
    # frame 6: 4 of 10 -> inactive
    assert lab[6] == 0


def test_speaker_1_last_bin_is_bit_7_and_codes_round_trip():
    # speaker 1 voiced in frames 61..100 = bin 3 (1.2-2.0 s) of frame 0: 40 of 40
    lab = L.projection_labels(va_with(spk1=[(61, 101)]))
    assert lab[0] == 128
    # speaker 0 in bins 0 and 1 (frames 1..30), speaker 1 in bin 2 (31..60)
    lab = L.projection_labels(va_with(spk0=[(1, 31)], spk1=[(31, 61)]))
    assert lab[0] == 0b0100_0011
    assert L.bins_to_class(L.class_to_bins(np.arange(256))).tolist() == list(range(256))


def test_soft_voice_activity_uses_the_mean_against_half():
    va = np.zeros((101, 2), np.float32)
    va[1:11, 0] = 0.5  # mean 0.5 -> active
    va[1:11, 1] = 0.49  # mean 0.49 -> inactive
    assert L.projection_labels(va)[0] == 1


def test_m1_hand_computed():
    probs = np.zeros(256)
    # half the mass: speaker 0 active in bins 0 and 1 (a_0 = 2 over the now bins)
    probs[0b0000_0011] = 0.5
    # half: speaker 1 active in bin 0 (a_1 = 1) and in bin 3 (counts for the future bins)
    probs[0b1001_0000] = 0.5
    p_now, p_future = L.p_now_future(probs)
    assert p_now == pytest.approx([2 / 3, 1 / 3])
    # future bins: only speaker 1's bin 3 -> all of it
    assert p_future == pytest.approx([0.0, 1.0])


def test_m1_with_no_active_bins_is_undecided():
    probs = np.zeros(256)
    probs[0] = 1.0  # everybody silent
    p_now, p_future = L.p_now_future(probs)
    assert p_now.tolist() == [0.5, 0.5] and p_future.tolist() == [0.5, 0.5]


def test_backchannel_classes():
    probs = np.zeros(256)
    # speaker 1 short (bin 0 only), speaker 0 holds the floor in bin 3
    probs[0b0001_1000] = 0.7
    # speaker 1 keeps talking into bin 3: a turn, not a backchannel
    probs[0b1001_1000] = 0.3
    assert L.p_backchannel(probs) == pytest.approx([0.0, 0.7])


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="shaped"):
        L.projection_labels(np.zeros((200, 3)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        L.projection_labels(np.full((200, 2), 2.0))
    with pytest.raises(ValueError, match="256"):
        L.p_now_future(np.zeros(10))
