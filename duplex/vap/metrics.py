"""Scores of VAP events (REFERENCE §2, M2/M3) and the binary-metric formulas.

Each task turns events into one score per event (the mean of a probability
over the event's window) and a 0/1 label:

- shift_hold (M2/M3): x = mean p_now of the speaker who was *not* talking
  before the silence, i.e. P(shift); label 1 = shift. Predict shift if x > 0.5.
- shift_prediction: mean p_future of the other speaker over the last 0.5 s
  of speech; label 1 = a shift follows, 0 = a hold follows.
- backchannel: mean P(backchannel) of the listener over the 0.5 s before a
  backchannel (label 1) or in a window where the other speaker holds the
  floor (label 0).
- short_long: mean p_future of the speaker starting to talk over the first
  0.2 s of the onset; label 1 = long, 0 = short (a backchannel).
"""
from __future__ import annotations

import numpy as np

TASKS = ("shift_hold", "shift_prediction", "backchannel", "short_long")
# (positive event kind, negative event kind, probability, take the other speaker's)
TASK_EVENTS = {
    "shift_hold": ("shift", "hold", "p_now", True),
    "shift_prediction": ("pred_shift", "pred_hold", "p_future", True),
    "backchannel": ("pred_backchannel", "pred_backchannel_neg", "p_bc", False),
    "short_long": ("long", "short", "p_future", False),
}


def window_means(p: np.ndarray, rows: np.ndarray, other: bool) -> np.ndarray:
    """Mean of p[start:end, speaker] (or of the other speaker) for each event row."""
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"probabilities must be shaped (frames, 2), got {p.shape}")
    out = np.empty(len(rows))
    for i, (a, b, spk) in enumerate(np.asarray(rows).reshape(-1, 3)):
        if not 0 <= a < b <= len(p):
            raise ValueError(f"event window [{a}, {b}) outside the {len(p)} frames of predictions")
        out[i] = p[a:b, 1 - spk if other else spk].mean()
    return out


def task_scores(events: dict[str, np.ndarray], probs: dict[str, np.ndarray]
                ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per task: (scores, labels) of one dialogue. probs has p_now, p_future, p_bc (N, 2)."""
    out = {}
    for task, (pos, neg, key, other) in TASK_EVENTS.items():
        sp = window_means(probs[key], events[pos], other)
        sn = window_means(probs[key], events[neg], other)
        out[task] = (np.concatenate([sp, sn]),
                     np.concatenate([np.ones(len(sp), int), np.zeros(len(sn), int)]))
    return out


def confusion(pred: np.ndarray, labels: np.ndarray) -> tuple[int, int, int, int]:
    """(tp, fp, tn, fn) with 1 as the positive class."""
    pred, labels = np.asarray(pred, bool), np.asarray(labels, bool)
    return (int((pred & labels).sum()), int((pred & ~labels).sum()),
            int((~pred & ~labels).sum()), int((~pred & labels).sum()))


def balanced_accuracy(pred: np.ndarray, labels: np.ndarray) -> float:
    """(recall of class 1 + recall of class 0) / 2; a class with no events is left out."""
    tp, fp, tn, fn = confusion(pred, labels)
    recalls = [r for r, n in ((tp / max(tp + fn, 1), tp + fn), (tn / max(tn + fp, 1), tn + fp)) if n]
    return float(np.mean(recalls)) if recalls else float("nan")


def f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def weighted_f1(pred: np.ndarray, labels: np.ndarray) -> float:
    """M3: (n_0 F1_0 + n_1 F1_1) / (n_0 + n_1), F1 of each class as the positive one."""
    tp, fp, tn, fn = confusion(pred, labels)
    n1, n0 = tp + fn, tn + fp
    if n0 + n1 == 0:
        return float("nan")
    return (n1 * f1(tp, fp, fn) + n0 * f1(tn, fn, fp)) / (n0 + n1)


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half)."""
    scores, labels = np.asarray(scores, float), np.asarray(labels, bool)
    pos, neg = scores[labels], scores[~labels]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    both = np.concatenate([pos, neg])
    order = np.argsort(both, kind="mergesort")
    ranks = np.empty(len(both))
    # average ranks over ties
    _, first, counts = np.unique(both[order], return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1
    ranks[order] = np.repeat(avg, counts)
    r_pos = ranks[: len(pos)]  # ranks are indexed like the concatenation
    return float((r_pos.sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The threshold (predict 1 if score > t) that maximises balanced accuracy."""
    scores, labels = np.asarray(scores, float), np.asarray(labels, int)
    if len(scores) == 0:
        return 0.5
    cands = np.unique(np.quantile(scores, np.linspace(0.005, 0.995, 199)))
    accs = [balanced_accuracy(scores > t, labels) for t in cands]
    return float(cands[int(np.nanargmax(accs))])


def summarize(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> dict:
    """bAcc, weighted F1, per-class recall and AUC of one task at `threshold`."""
    scores, labels = np.asarray(scores, float), np.asarray(labels, int)
    pred = scores > threshold
    tp, fp, tn, fn = confusion(pred, labels)
    return {
        "n_pos": tp + fn, "n_neg": tn + fp, "threshold": round(float(threshold), 4),
        "bacc": balanced_accuracy(pred, labels), "weighted_f1": weighted_f1(pred, labels),
        "recall_pos": tp / max(tp + fn, 1), "recall_neg": tn / max(tn + fp, 1),
        "auc": auc(scores, labels),
    }
