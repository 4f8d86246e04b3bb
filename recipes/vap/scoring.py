"""Run a VAP model over whole dialogues and score the VAP events (M1-M3)."""
from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from duplex.vap import metrics
from duplex.vap.events import EventConfig, extract_events


@torch.no_grad()
def predict(model, x: np.ndarray, block: int = 500) -> dict[str, np.ndarray]:
    """Per-frame p_now, p_future, p_bc, p_va (N, 2) for one dialogue's input
    (VA (N, 2), or audio (2, samples) for an audio model)."""
    model.eval()
    dev = next(model.parameters()).device
    out = model.forward_long(torch.as_tensor(np.asarray(x, np.float32), device=dev)[None], block)
    probs = model.probabilities(out["logits"][0])
    res = {k: v.double().cpu().numpy() for k, v in probs.items()}
    res["p_va"] = torch.sigmoid(out["va_logits"][0]).double().cpu().numpy()
    return res


def collect(model, vas: list[np.ndarray], inputs: list[np.ndarray] | None = None,
            cfg: EventConfig = EventConfig(), progress: bool = True, desc: str = "scoring"
            ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Scores and labels of every task over dialogues (clean VA gives the events;
    `inputs`, if given, is what the model sees instead of the clean VA)."""
    acc: dict[str, list] = {t: ([], []) for t in metrics.TASKS}
    for i, va in enumerate(tqdm(vas, desc=desc, disable=not progress, unit="dlg")):
        probs = predict(model, va if inputs is None else inputs[i])
        n = min(len(va), len(probs["p_now"]))
        events = extract_events(va[:n], cfg)
        for task, (s, y) in metrics.task_scores(events, {k: v[:n] for k, v in probs.items()}).items():
            acc[task][0].append(s)
            acc[task][1].append(y)
    return {t: (np.concatenate(s) if s else np.zeros(0), np.concatenate(y) if y else np.zeros(0, int))
            for t, (s, y) in acc.items()}


def tune_thresholds(collected: dict) -> dict[str, float]:
    """Per task the threshold with the best balanced accuracy; shift/hold stays
    at 0.5, as M2 defines it."""
    th = {t: metrics.best_threshold(*collected[t]) for t in metrics.TASKS}
    th["shift_hold"] = 0.5
    return th


def summarize(collected: dict, thresholds: dict[str, float] | None = None) -> dict:
    """The figures of every task: at its tuned threshold, plus bAcc at 0.5."""
    out = {}
    for t in metrics.TASKS:
        s, y = collected[t]
        th = (thresholds or {}).get(t, 0.5)
        res = metrics.summarize(s, y, th)
        res["bacc_at_0.5"] = metrics.balanced_accuracy(s > 0.5, y)
        out[t] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in res.items()}
    return out
