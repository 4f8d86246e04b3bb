"""VAP projection labels and M1 probabilities (REFERENCE §2), pure numpy.

For frame t the future of each speaker is cut into 4 bins covering
0-0.2, 0.2-0.6, 0.6-1.2 and 1.2-2.0 s after the frame (frames t+1 ...
t+100 at 50 Hz). A bin is active when >= 50 % of its frames are voiced
(mean >= 0.5, so soft voice activity works too). The 8 bins form an 8-bit
class code: bit k*4 + b is speaker k's bin b (speaker 0 = bits 0-3).
"""
from __future__ import annotations

import numpy as np

FRAME_HZ = 50
BIN_TIMES = (0.2, 0.4, 0.6, 0.8)  # bin durations in seconds: 0-0.2, 0.2-0.6, 0.6-1.2, 1.2-2.0
N_SPEAKERS = 2
N_BINS = len(BIN_TIMES)
N_CLASSES = 2 ** (N_SPEAKERS * N_BINS)  # 256
NOW_BINS = (0, 1)  # p_now: 0-0.6 s
FUTURE_BINS = (2, 3)  # p_future: 0.6-2.0 s


def bin_frames(frame_hz: int = FRAME_HZ) -> np.ndarray:
    """Bin edges in frames after the current one: [0, 10, 30, 60, 100] at 50 Hz."""
    sizes = [int(round(t * frame_hz)) for t in BIN_TIMES]
    return np.concatenate([[0], np.cumsum(sizes)]).astype(int)


def horizon_frames(frame_hz: int = FRAME_HZ) -> int:
    return int(bin_frames(frame_hz)[-1])


def _check_va(va: np.ndarray) -> np.ndarray:
    va = np.asarray(va, dtype=np.float32)
    if va.ndim != 2 or va.shape[1] != N_SPEAKERS:
        raise ValueError(f"voice activity must be shaped (frames, 2), got {va.shape}")
    if va.size and (np.nanmin(va) < 0 or np.nanmax(va) > 1 or np.isnan(va).any()):
        raise ValueError("voice activity values must lie in [0, 1]")
    return va


def bin_activity(va: np.ndarray, frame_hz: int = FRAME_HZ) -> np.ndarray:
    """Active future bins for every frame that has a full horizon after it.

    va: (N, 2) voice activity. Returns bool (N - horizon, 2, 4): [t, k, b] is
    True when speaker k is voiced in >= 50 % of bin b's frames after frame t.
    """
    va = _check_va(va)
    edges = bin_frames(frame_hz)
    n = va.shape[0] - edges[-1]
    if n <= 0:
        return np.zeros((0, N_SPEAKERS, N_BINS), dtype=bool)
    cum = np.concatenate([np.zeros((1, N_SPEAKERS)), np.cumsum(va, axis=0, dtype=np.float64)])
    t = np.arange(n)[:, None]
    out = np.empty((n, N_SPEAKERS, N_BINS), dtype=bool)
    for b in range(N_BINS):
        lo, hi = edges[b], edges[b + 1]
        # frames t+1+lo .. t+hi (inclusive): cum[t+1+hi] - cum[t+1+lo]
        voiced = cum[(t + 1 + hi)[:, 0]] - cum[(t + 1 + lo)[:, 0]]
        out[:, :, b] = voiced / (hi - lo) >= 0.5
    return out


def bins_to_class(bins: np.ndarray) -> np.ndarray:
    """(..., 2, 4) bool -> (...) int class in [0, 256): bit k*4 + b."""
    bins = np.asarray(bins, dtype=bool)
    if bins.shape[-2:] != (N_SPEAKERS, N_BINS):
        raise ValueError(f"bins must end in (2, 4), got {bins.shape}")
    weights = (2 ** np.arange(N_SPEAKERS * N_BINS)).reshape(N_SPEAKERS, N_BINS)
    return (bins * weights).sum(axis=(-2, -1)).astype(np.int64)


def class_to_bins(cls: np.ndarray | int) -> np.ndarray:
    """Inverse of bins_to_class: (...) int -> (..., 2, 4) bool."""
    cls = np.asarray(cls, dtype=np.int64)
    if cls.size and (cls.min() < 0 or cls.max() >= N_CLASSES):
        raise ValueError(f"class codes must lie in [0, {N_CLASSES})")
    bits = (cls[..., None] >> np.arange(N_SPEAKERS * N_BINS)) & 1
    return bits.reshape(*cls.shape, N_SPEAKERS, N_BINS).astype(bool)


def projection_labels(va: np.ndarray, frame_hz: int = FRAME_HZ) -> np.ndarray:
    """Class labels (N - horizon,) for the frames of `va` that have a full horizon."""
    return bins_to_class(bin_activity(va, frame_hz))


# a_k(c) per bin group: (256, 2) counts of active bins of speaker k in class c
_ALL_BINS = class_to_bins(np.arange(N_CLASSES)).astype(np.float64)  # (256, 2, 4)


def active_counts(bins: tuple[int, ...]) -> np.ndarray:
    """a_k(c) for the bins B: (256, 2) number of active bins of speaker k in class c."""
    return _ALL_BINS[:, :, list(bins)].sum(-1)


A_NOW = active_counts(NOW_BINS)
A_FUTURE = active_counts(FUTURE_BINS)


def m1(probs: np.ndarray, bins: tuple[int, ...]) -> np.ndarray:
    """M1: p_B(k) = sum_c P(c) a_k(c) / sum_k' sum_c P(c) a_k'(c).

    probs: (..., 256) class distribution. Returns (..., 2). When no class with
    any active bin in B has mass, both speakers get 0.5.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape[-1] != N_CLASSES:
        raise ValueError(f"expected a distribution over {N_CLASSES} classes, got {probs.shape}")
    num = probs @ active_counts(bins)
    den = num.sum(-1, keepdims=True)
    safe = np.where(den > 0, den, 1.0)
    return np.where(den > 0, num / safe, 0.5)


def p_now_future(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(p_now, p_future), each (..., 2), from (..., 256) class probabilities."""
    return m1(probs, NOW_BINS), m1(probs, FUTURE_BINS)


def _backchannel_classes(listener: int) -> np.ndarray:
    """Classes where `listener` makes a short sound and the other keeps the floor:
    listener active in some bin of 0-1.2 s but not in 1.2-2.0 s, the other
    speaker active in 1.2-2.0 s."""
    b = _ALL_BINS.astype(bool)
    other = 1 - listener
    return b[:, listener, :3].any(-1) & ~b[:, listener, 3] & b[:, other, 3]


BC_CLASSES = np.stack([_backchannel_classes(0), _backchannel_classes(1)], axis=-1)  # (256, 2)


def p_backchannel(probs: np.ndarray) -> np.ndarray:
    """(..., 2): probability that speaker k's coming (or current) sound is a
    backchannel: the mass of the backchannel classes of listener k."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape[-1] != N_CLASSES:
        raise ValueError(f"expected a distribution over {N_CLASSES} classes, got {probs.shape}")
    return probs @ BC_CLASSES.astype(np.float64)
