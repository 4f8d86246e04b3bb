"""`duplex train lexical`: the lexical end-of-turn cue (duplex/turn/lexical.py)
from the Switchboard word timings, and its evaluation beside VAP.

    duplex train lexical --out models/assets/vap/lexical.json --report models/assets/vap/lexical_report.json

Training points are the silences between single-speaker stretches (the
policy's decision points, recipes/vap/compare.py) of the train split; the
label is whether the other speaker talks next. The words are those of the
speaker's current turn: since the other speaker last held the floor for at
least 1 s (backchannels do not end a turn).

The report scores, on the test split's VAP shift/hold events (M2), the words
alone and the words combined with the shipped VAP model's P(shift): a
two-weight logistic regression fitted on the validation events with balanced
class weights, so that 0.5 is its balanced decision point.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from duplex.data.switchboard import Dialogue, load_dialogues
from duplex.turn.lexical import LexicalTurnEnd, features, normalize
from duplex.vap import metrics
from duplex.vap.events import EventConfig, shift_hold_events

from .compare import decision_points

HZ = 50
TURN_MIN_S = 1.0  # a stretch of the other speaker at least this long ends the turn


class TurnWords:
    """The normalized words of a speaker's current turn at any time of one dialogue."""

    def __init__(self, d: Dialogue):
        self.words = [sorted(d.words[k], key=lambda w: w[0]) for k in (0, 1)]
        self.ends = [np.array([w[1] for w in ws]) for ws in self.words]
        # ends of each speaker's floor-holding stretches (>= TURN_MIN_S)
        self.floor_ends = [np.array(sorted(e for s, e in d.segments(k) if e - s >= TURN_MIN_S))
                           for k in (0, 1)]

    def at(self, speaker: int, t: float) -> list[str]:
        fe = self.floor_ends[1 - speaker]
        i = int(np.searchsorted(fe, t, side="right"))
        start = float(fe[i - 1]) if i else 0.0
        hi = int(np.searchsorted(self.ends[speaker], t + 1.0 / HZ, side="right"))
        # a window well past MAX_WORDS: normalize drops noise marks and fragments
        return normalize([w for s, e, w in self.words[speaker][max(0, hi - 200):hi]
                          if s >= start and e <= t + 1.0 / HZ])


def points(dialogues, progress: bool = True, desc: str = "points"):
    """(features, is_shift) for every decision point of the dialogues."""
    feats, ys = [], []
    for d in tqdm(dialogues, desc=desc, unit="dlg", disable=not progress):
        va, tw = d.voice_activity(HZ), TurnWords(d)
        for s, _, user, kind in decision_points(va, min_context=0, min_ms=100):
            f = features(tw.at(user, s / HZ))
            if f:
                feats.append(f)
                ys.append(kind == "shift")
    return feats, np.array(ys, bool)


def fit(feats, ys, min_count: int = 3, epochs: int = 6, l2: float = 1e-4, seed: int = 0
        ) -> LexicalTurnEnd:
    """Logistic regression on the sparse features (torch EmbeddingBag, Adam)."""
    counts = Counter(k for f in feats for k in f)
    vocab = {k: i for i, k in enumerate(sorted(k for k, c in counts.items() if c >= min_count))}
    rows = [[vocab[k] for k in f if k in vocab] for f in feats]
    torch.manual_seed(seed)
    emb = torch.nn.EmbeddingBag(len(vocab) + 1, 1, mode="sum", padding_idx=len(vocab))
    torch.nn.init.zeros_(emb.weight)
    bias = torch.nn.Parameter(torch.tensor([float(np.log(ys.mean() / (1 - ys.mean())))]))
    opt = torch.optim.Adam([emb.weight, bias], lr=0.05)
    width = max(len(r) for r in rows)
    x = torch.tensor([r + [len(vocab)] * (width - len(r)) for r in rows])
    y = torch.tensor(ys, dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=gen).split(4096):
            z = emb(x[idx]).squeeze(1) + bias
            loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y[idx])
            loss = loss + l2 * emb.weight[:-1].pow(2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    w = emb.weight.detach()[:-1, 0].numpy()
    weights = {k: round(float(w[i]), 4) for k, i in vocab.items() if abs(w[i]) >= 0.02}
    return LexicalTurnEnd(weights, round(float(bias.item()), 4))


def m2_events(dialogues, vap_model=None, progress: bool = True, desc: str = "events"):
    """Per VAP shift/hold event: the lexical logit, the VAP P(shift) (when a model is
    given) and the label."""
    from . import scoring

    cfg = EventConfig()
    pad = cfg.frames(cfg.metric_pad_s)
    lex, vap, ys = [], [], []
    for d in tqdm(dialogues, desc=desc, unit="dlg", disable=not progress):
        va, tw = d.voice_activity(HZ), TurnWords(d)
        ev = shift_hold_events(va, cfg)
        probs = scoring.predict(vap_model, va) if vap_model is not None else None
        for kind in ("shift", "hold"):
            for a, b, spk in ev[kind]:
                lex.append(features(tw.at(int(spk), (a - pad) / HZ)))
                ys.append(kind == "shift")
            if probs is not None and len(ev[kind]):
                vap.append(metrics.window_means(probs["p_now"], ev[kind], other=True))
    return lex, (np.concatenate(vap) if vap else None), np.array(ys, bool)


def _logit(p):
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def fit_combination(cols: list[np.ndarray], ys: np.ndarray) -> np.ndarray:
    """Balanced logistic regression on a few score columns; returns [w..., bias]."""
    x = torch.tensor(np.stack(cols + [np.ones_like(cols[0])], 1), dtype=torch.float64)
    y = torch.tensor(ys, dtype=torch.float64)
    wt = torch.where(y > 0, 0.5 / y.mean(), 0.5 / (1 - y.mean()))
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=200)

    def closure():
        opt.zero_grad()
        loss = (wt * torch.nn.functional.binary_cross_entropy_with_logits(x @ w, y, reduction="none")).mean()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy()


def score(p: np.ndarray, ys: np.ndarray) -> dict:
    pred = p > 0.5
    return {"bacc": round(metrics.balanced_accuracy(pred, ys), 4),
            "weighted_f1": round(metrics.weighted_f1(pred, ys), 4),
            "auc": round(metrics.auc(p, ys), 4), "events": [int(ys.sum()), int((~ys).sum())]}


def evaluate(model: LexicalTurnEnd, val, test, vap_model, progress: bool = True) -> dict:
    def lex_col(fs):
        return np.array([model.feature_logit(f) for f in fs])

    fv, pv, yv = m2_events(val, vap_model, progress, "val events")
    ft, pt, yt = m2_events(test, vap_model, progress, "test events")

    def refit(val_cols, test_cols) -> dict:
        """Fit the balanced combination on val, score it on test."""
        w = fit_combination(val_cols, yv)
        z = sum(wi * c for wi, c in zip(w, test_cols)) + w[-1]
        return dict(score(1 / (1 + np.exp(-z)), yt), combination=w.round(4).tolist())

    lv, lt = lex_col(fv), lex_col(ft)
    out = {"words": refit([lv], [lt])}
    if pv is not None:
        out["vap"] = score(pt, yt)  # M2 as the VAP report has it
        out["vap_balanced"] = refit([_logit(pv)], [_logit(pt)])
        out["vap_and_words"] = refit([_logit(pv), lv], [_logit(pt), lt])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="duplex train lexical", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/lexical.json", help="weights JSON to write")
    ap.add_argument("--report", default=None, help="evaluation JSON to write")
    ap.add_argument("--data", default=None, help="Switchboard word timings (.jsonl.gz)")
    ap.add_argument("--limit", type=int, default=None, help="at most N dialogues per split")
    ap.add_argument("--val-limit", type=int, default=None,
                    help="at most N validation dialogues (they only fit the combination)")
    ap.add_argument("--min-count", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--vap-checkpoint", default=None, help="VAP model to combine with (default: shipped)")
    ap.add_argument("--no-vap", action="store_true", help="evaluate the words alone")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(sys.argv[1:] if argv is None else list(argv))
    t0, prog = time.time(), not args.no_progress
    torch.set_num_threads(2)
    split = {s: list(load_dialogues(args.data, split=s, limit=args.limit)) for s in ("train", "val", "test")}
    if args.val_limit is not None:
        split["val"] = split["val"][:args.val_limit]
    for s, ds in split.items():
        if not ds:
            raise SystemExit(f"no {s} dialogues in the Switchboard file {args.data or ''}")
    feats, ys = points(split["train"], prog, "train points")
    model = fit(feats, ys, args.min_count, args.epochs)
    vap_model = None
    if not args.no_vap:
        from duplex.models.vap.checkpoint import load_model

        vap_model = load_model(args.vap_checkpoint, "cpu")
    report = evaluate(model, split["val"], split["test"], vap_model, prog)
    model.meta = {"trained_on": "Switchboard train split decision points",
                  "points": [int(ys.sum()), int((~ys).sum())], "features": len(model.weights),
                  "combination_with_vap": report.get("vap_and_words", {}).get("combination")}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(model.to_dict(), separators=(",", ":")) + "\n")
    report["info"] = {"train_points": model.meta["points"], "features": len(model.weights),
                      "dialogues": {s: len(d) for s, d in split.items()},
                      "seconds": round(time.time() - t0, 1), "weights": args.out}
    text = json.dumps(report, indent=2)
    print(text)
    if args.report:
        Path(args.report).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
