"""Does reading the user's words help the live policy? Switchboard replay of
the VAP policy with and without the lexical end-of-turn cue.

    python -m duplex.recipes.vap.words_compare --limit 100 --val-limit 40 --out models/assets/vap

The decision points and the VAP projections are those of compare.py; the
words are the speaker's turn up to the silence, from the transcript (an
oracle: live ASR partials come later and with errors). The word thresholds
are chosen on validation dialogues for the take-over budget of a silence
timeout, the VAP parameters stay those of the config.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from duplex.config import TurnConfig
from duplex.data.switchboard import load_dialogues
from duplex.turn.lexical import LexicalTurnEnd

from .compare import FRAME_MS, point_probs, silence_budget, summarize, vap_takeover_ms
from .lexical import HZ, TurnWords

GRID = {"shift_threshold": (0.4, 0.5, 0.6, 0.7, 1.01),
        "vap_end_silence_ms": (300, 400, 500, 600, 700, 800),
        "hold_threshold": (0.0, 0.2),
        "words_hold_threshold": (0.0, 0.1, 0.15, 0.2, 0.25),
        "words_shift_threshold": (0.4, 0.5, 0.6, 1.01),
        "finished_gap_ms": (100, 200, 300)}


def collect(model, words: LexicalTurnEnd, dialogues, cfg: TurnConfig, progress: bool, desc: str):
    after = cfg.unfinished_max_silence_ms // FRAME_MS + 1
    ps, pw, sil, shift = [], [], [], []
    for d in tqdm(dialogues, desc=desc, unit="dlg", disable=not progress):
        va = d.voice_activity(HZ).astype(np.uint8)
        pts, pn = point_probs(model, va, after, 300, cfg.min_gap_ms)
        if not pts:
            continue
        tw = TurnWords(d)
        p = [words.p_shift(tw.at(u, s / HZ)) for s, _, u, _ in pts]
        ps.append(pn[:, :, 1])
        pw.append(np.array([np.nan if x is None else x for x in p]))
        sil.append(np.array([(e - s) * FRAME_MS for s, e, _, _ in pts], float))
        shift.append(np.array([k == "shift" for *_, k in pts]))
    return np.concatenate(ps), np.concatenate(pw), np.concatenate(sil), np.concatenate(shift)


def takeover_ms(p_shift: np.ndarray, p_words: np.ndarray, cfg: TurnConfig) -> np.ndarray:
    """Vectorised VAPPolicy end-of-turn time with words (ms after the silence start)."""
    t = (np.arange(p_shift.shape[1]) + 1) * FRAME_MS
    base = vap_takeover_ms(p_shift[:, : cfg.max_silence_ms // FRAME_MS + 1], cfg)
    awake = t >= cfg.hangover_ms
    known = ~np.isnan(p_words)
    pw = np.where(known, p_words, 0.5)
    fin = awake & (t >= cfg.finished_gap_ms) & (p_shift >= cfg.hold_threshold)
    fin &= (known & (pw >= cfg.words_shift_threshold))[:, None]
    first_fin = np.where(fin.any(1), t[fin.argmax(1)], np.inf)
    out = np.minimum(base, first_fin)
    unfinished = known & (pw < cfg.words_hold_threshold)
    return np.where(unfinished, float(cfg.unfinished_max_silence_ms), out)


def tune(val, cfg: TurnConfig, budget: float) -> TurnConfig:
    """VAP and word parameters together: the lowest mean gap on shifts whose rate of
    taking the floor in a hold stays within `budget`."""
    import itertools

    ps, pw, sil, shift = val
    best, best_gap = cfg, float("inf")
    for values in itertools.product(*GRID.values()):
        c = replace(cfg, **dict(zip(GRID, values)))
        r = summarize(takeover_ms(ps, pw, c), sil, shift)
        if r["false_takeover"] <= budget and r["gap_mean_ms"] < best_gap:
            best, best_gap = c, r["gap_mean_ms"]
    return best


def _words_params(c: TurnConfig) -> dict:
    return {k: getattr(c, k) for k in (*GRID, "unfinished_max_silence_ms")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m duplex.recipes.vap.words_compare", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=None, help="VAP checkpoint (default: shipped)")
    ap.add_argument("--words", default=None, help="lexical weights JSON (default: shipped)")
    ap.add_argument("--data", default=None)
    ap.add_argument("--limit", type=int, default=100, help="test dialogues")
    ap.add_argument("--val-limit", type=int, default=40)
    ap.add_argument("--out", default=None, help="write words_compare.json here")
    ap.add_argument("--cache", default=None,
                    help="npz of the collected points: written once, then read (tuning reruns)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(sys.argv[1:] if argv is None else list(argv))
    from duplex.models.registry import LEXICAL_WEIGHTS
    from duplex.models.vap.checkpoint import load_model

    torch.set_num_threads(2)
    model = load_model(args.checkpoint, "cpu")
    words = LexicalTurnEnd.load(args.words or LEXICAL_WEIGHTS)
    cfg, prog = TurnConfig(), not args.no_progress
    cache = Path(args.cache) if args.cache else None
    if cache is not None and cache.exists():
        z = np.load(cache)
        val, test = tuple(z[f"val{i}"] for i in range(4)), tuple(z[f"test{i}"] for i in range(4))
    else:
        val = collect(model, words, list(load_dialogues(args.data, "val", args.val_limit)), cfg, prog, "val")
        test = collect(model, words, list(load_dialogues(args.data, "test", args.limit)), cfg, prog, "test")
        if cache is not None:
            np.savez(cache, **{f"val{i}": a for i, a in enumerate(val)},
                     **{f"test{i}": a for i, a in enumerate(test)})
    ps, pw, sil, shift = test
    no_words = replace(cfg, words_hold_threshold=0.0, words_shift_threshold=1.01)
    patient = replace(no_words, shift_threshold=0.6, hold_threshold=0.2, vap_end_silence_ms=700)
    rows = [dict(policy="vap (config, no words)", **summarize(takeover_ms(ps, pw, no_words), sil, shift)),
            dict(policy="vap, patient setting, no words", params=_words_params(patient),
                 **summarize(takeover_ms(ps, pw, patient), sil, shift)),
            dict(policy="vap + words (config)", params=_words_params(cfg),
                 **summarize(takeover_ms(ps, pw, cfg), sil, shift))]
    for T in (300, 500, 800):
        c = tune(val, cfg, silence_budget(T, val[2], val[3]))
        rows += [dict(policy=f"silence {T} ms", **summarize(np.full(len(sil), float(T)), sil, shift)),
                 dict(policy=f"vap + words matched to {T} ms", params=_words_params(c),
                      **summarize(takeover_ms(ps, pw, c), sil, shift))]
    known = ~np.isnan(pw)
    res = {"points": int(len(sil)), "shifts": int(shift.sum()), "with_words": round(float(known.mean()), 4),
           "unfinished_share": {"holds": round(float((pw[~shift & known] < cfg.words_hold_threshold).mean()), 4),
                                "shifts": round(float((pw[shift & known] < cfg.words_hold_threshold).mean()), 4)},
           "table": rows, "dialogues": {"test": args.limit, "val": args.val_limit}}
    text = json.dumps(res, indent=2)
    print(text)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "words_compare.json").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
