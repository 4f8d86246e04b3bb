"""Training-time corruption of voice activity, so a model trained on word
timings copes with what the server feeds it: the user's channel is a Silero
speech probability (soft, late at onsets, trailing at offsets, missing
quiet "mm-hm"s, with blips and dips), the agent's is the playback flag.

Labels always come from the clean activity; only the model input is corrupted.
"""
from __future__ import annotations

import numpy as np

from duplex.vap.events import islands


def jitter_edges(x: np.ndarray, rng: np.random.Generator, onset=(-1, 4), offset=(-2, 5),
                 drop_short: int = 5, p_drop: float = 0.3) -> np.ndarray:
    """Binary channel with segment onsets/offsets moved by random frames (later on
    average, like a detector), and some segments of <= drop_short frames removed."""
    out = np.zeros_like(x)
    s, d, v = islands(x >= 0.5)
    n = len(x)
    for start, length, val in zip(s, d, v):
        if not val:
            continue
        if length <= drop_short and rng.random() < p_drop:
            continue
        a = int(np.clip(start + rng.integers(*onset), 0, n))
        b = int(np.clip(start + length + rng.integers(*offset), 0, n))
        if b > a:
            out[a:b] = 1.0
    return out


def soften(x: np.ndarray, rng: np.random.Generator, blip_rate: float = 0.01,
           dip_rate: float = 0.02) -> np.ndarray:
    """Binary channel -> a plausible detector probability: high but uneven in
    speech, low but not zero in silence, ramps at the edges, short false
    blips in silence and dips in speech."""
    n = len(x)
    hi = rng.uniform(0.6, 1.0, n)
    lo = rng.beta(1.0, 12.0, n)
    p = np.where(x >= 0.5, hi, lo)
    for rate, val, cond in ((blip_rate, (0.5, 0.95), x < 0.5), (dip_rate, (0.05, 0.45), x >= 0.5)):
        starts = np.flatnonzero((rng.random(n) < rate) & cond)
        for a in starts:
            p[a: a + rng.integers(1, 4)] = rng.uniform(*val)
    k = int(rng.integers(1, 4))  # edge ramps: a short causal moving average
    if k > 1:
        p = np.convolve(np.concatenate([np.full(k - 1, p[0]), p]), np.ones(k) / k, mode="valid")
    return np.clip(p, 0.0, 1.0).astype(np.float32)


def augment_va(va: np.ndarray, rng: np.random.Generator, p_channel: float = 0.5) -> np.ndarray:
    """Corrupt each channel independently with probability p_channel."""
    out = np.asarray(va, dtype=np.float32).copy()
    for k in range(out.shape[1]):
        if rng.random() < p_channel:
            out[:, k] = soften(jitter_edges(out[:, k], rng), rng)
    return out
