"""Turn-taking events from a two-speaker voice-activity matrix (VAP's definitions).

All times are frames at 50 Hz. Each event kind is an int array (n, 3) of
[start, end, speaker] rows (end exclusive); what `speaker` means:

- shift / hold: a mutual silence with only one speaker (the *previous*
  speaker, the row's `speaker`) active for 1 s before it, only the next
  speaker active for 1 s after it, >= 3 s of context before it and at least
  0.25 s long (so the scored window lies inside it). The window is
  [t_sil + 0.05, t_sil + 0.25] s. Shift when the next speaker is the other one.
- pred_shift / pred_hold: the last 0.5 s of the previous speaker's speech
  before a shift / hold (its last voiced stretch must be >= 0.5 s long).
- backchannel: a voice-activity segment <= 1 s of `speaker`, with >= 1 s of
  that speaker's silence before and >= 2 s after, while the other speaker
  holds the floor (voiced within 1 s before its onset and 1 s after its end).
  pred_backchannel: the 0.5 s before it. pred_backchannel_neg: 0.5 s windows
  (one every 2 s) inside single-speaker stretches, >= 1 s after their start
  and >= 2 s before their end; `speaker` is the silent listener.
- long / short: the first 0.2 s of an onset; long = the next speaker of a
  shift whose stretch lasts >= 1 s, short = a backchannel. `speaker` is the
  one starting to talk.

"Active for 1 s" uses pause-filled activity: a speaker's silences that
are holds (same speaker before and after, nobody else in between) count as
that speaker's activity, as in VAP.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ONLY_0, SILENCE, BOTH, ONLY_1 = 0, 1, 2, 3
KINDS = ("shift", "hold", "pred_shift", "pred_hold", "backchannel", "pred_backchannel",
         "pred_backchannel_neg", "long", "short")


@dataclass(frozen=True)
class EventConfig:
    frame_hz: int = 50
    min_context_s: float = 3.0
    metric_pad_s: float = 0.05  # scored window starts this long into the silence ...
    metric_s: float = 0.2  # ... and lasts this long
    sh_pre_s: float = 1.0  # only the previous speaker active this long before the silence
    sh_post_s: float = 1.0  # only the next speaker active this long after it
    prediction_s: float = 0.5  # shift / backchannel prediction region
    bc_max_s: float = 1.0
    bc_pre_silence_s: float = 1.0
    bc_post_silence_s: float = 2.0
    bc_floor_s: float = 1.0  # the other speaker voiced within this much before and after
    bc_neg_stride_s: float = 2.0
    long_min_s: float = 1.0
    onset_region_s: float = 0.2

    def frames(self, seconds: float) -> int:
        return int(seconds * self.frame_hz)  # truncating, as VAP does


def islands(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of equal values: (starts, lengths, values)."""
    x = np.asarray(x)
    if x.size == 0:
        e = np.zeros(0, dtype=int)
        return e, e, x[:0]
    change = np.flatnonzero(x[1:] != x[:-1]) + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([starts, [x.size]]))
    return starts, lengths, x[starts]


def binarize(va: np.ndarray) -> np.ndarray:
    va = np.asarray(va)
    if va.ndim != 2 or va.shape[1] != 2:
        raise ValueError(f"voice activity must be shaped (frames, 2), got {va.shape}")
    return (va >= 0.5).astype(np.int8)


def dialog_states(va: np.ndarray) -> np.ndarray:
    """Per frame: 0 only speaker 0, 1 silence, 2 both, 3 only speaker 1."""
    v = binarize(va)
    return (2 * v[:, 1] - v[:, 0] + 1).astype(np.int8)


def fill_pauses(va: np.ndarray) -> np.ndarray:
    """Voice activity with each hold pause (X, silence, X) filled as X's activity."""
    v = binarize(va).copy()
    s, d, states = islands(dialog_states(v))
    for i in range(1, len(states) - 1):
        if states[i] == SILENCE and states[i - 1] == states[i + 1] and states[i - 1] in (ONLY_0, ONLY_1):
            v[s[i]:s[i] + d[i], 0 if states[i - 1] == ONLY_0 else 1] = 1
    return v


def _rows(rows: list) -> np.ndarray:
    return np.asarray(rows, dtype=np.int64).reshape(-1, 3)


def _solo(filled: np.ndarray, a: int, b: int, speaker: int) -> bool:
    """Only `speaker` active in filled[a:b] (and the range is complete)."""
    if a < 0 or b > len(filled) or b <= a:
        return False
    return bool(filled[a:b, speaker].all() and not filled[a:b, 1 - speaker].any())


def shift_hold_events(va: np.ndarray, cfg: EventConfig = EventConfig()) -> dict[str, np.ndarray]:
    filled = fill_pauses(va)
    s, d, states = islands(dialog_states(va))
    pre, post = cfg.frames(cfg.sh_pre_s), cfg.frames(cfg.sh_post_s)
    pad, win_end = cfg.frames(cfg.metric_pad_s), cfg.frames(cfg.metric_pad_s + cfg.metric_s)
    pred, ctx = cfg.frames(cfg.prediction_s), cfg.frames(cfg.min_context_s)
    long_min, onset = cfg.frames(cfg.long_min_s), cfg.frames(cfg.onset_region_s)
    out: dict[str, list] = {k: [] for k in ("shift", "hold", "pred_shift", "pred_hold", "long")}
    for i in range(1, len(states) - 1):
        a, sil, b = states[i - 1], states[i], states[i + 1]
        if sil != SILENCE or a not in (ONLY_0, ONLY_1) or b not in (ONLY_0, ONLY_1):
            continue
        prev, nxt = (0 if a == ONLY_0 else 1), (0 if b == ONLY_0 else 1)
        t_sil, t_on = s[i], s[i + 1]
        if t_sil < ctx or d[i] < win_end:
            continue
        if not (_solo(filled, t_sil - pre, t_sil, prev) and _solo(filled, t_on, t_on + post, nxt)):
            continue
        kind = "shift" if nxt != prev else "hold"
        out[kind].append((t_sil + pad, t_sil + win_end, prev))
        if kind == "shift" and d[i + 1] >= long_min:
            out["long"].append((t_on, t_on + onset, nxt))
        if d[i - 1] >= pred and t_sil - pred >= ctx:
            out["pred_" + kind].append((t_sil - pred, t_sil, prev))
    return {k: _rows(v) for k, v in out.items()}


def backchannel_events(va: np.ndarray, cfg: EventConfig = EventConfig()) -> dict[str, np.ndarray]:
    filled = fill_pauses(va)
    n = len(filled)
    ctx, pred, onset = cfg.frames(cfg.min_context_s), cfg.frames(cfg.prediction_s), cfg.frames(cfg.onset_region_s)
    bc_max, floor = cfg.frames(cfg.bc_max_s), cfg.frames(cfg.bc_floor_s)
    pre_sil, post_sil = cfg.frames(cfg.bc_pre_silence_s), cfg.frames(cfg.bc_post_silence_s)
    out: dict[str, list] = {k: [] for k in ("backchannel", "pred_backchannel", "short")}
    for spk in (0, 1):
        s, d, v = islands(filled[:, spk])
        for i in range(1, len(v) - 1):
            if v[i] != 1 or d[i] > bc_max or d[i - 1] < pre_sil or d[i + 1] < post_sil:
                continue
            start, end = s[i], s[i] + d[i]
            if start < ctx or end + floor > n:
                continue
            other = filled[:, 1 - spk]
            if not (other[start - floor:start].any() and other[end:end + floor].any()):
                continue
            out["backchannel"].append((start, end, spk))
            out["short"].append((start, start + onset, spk))
            if start - pred >= ctx:
                out["pred_backchannel"].append((start - pred, start, spk))
    # negatives: single-speaker stretches of the pause-filled activity
    neg = []
    left, right = cfg.frames(cfg.bc_pre_silence_s), cfg.frames(cfg.bc_post_silence_s)
    stride = cfg.frames(cfg.bc_neg_stride_s)
    s, d, states = islands(dialog_states(filled))
    for start, length, state in zip(s, d, states):
        if state not in (ONLY_0, ONLY_1):
            continue
        listener = 1 if state == ONLY_0 else 0
        lo, hi = max(start + left, ctx), start + length - right
        for a in range(lo, hi - pred + 1, stride):
            neg.append((a, a + pred, listener))
    res = {k: _rows(v) for k, v in out.items()}
    res["pred_backchannel_neg"] = _rows(neg)
    return res


def extract_events(va: np.ndarray, cfg: EventConfig = EventConfig()) -> dict[str, np.ndarray]:
    """All event kinds (see the module doc) of one dialogue's voice activity (N, 2)."""
    ev = shift_hold_events(va, cfg)
    ev.update(backchannel_events(va, cfg))
    return {k: ev[k] for k in KINDS}
