"""`duplex eval vap`: VAP event metrics (REFERENCE §2, M2/M3) of a checkpoint
on a Switchboard split, printed as JSON.

    duplex eval vap --split test                        # the shipped checkpoint
    duplex eval vap --checkpoint runs/vap --split val --limit 50
    duplex eval vap --split test --report r.json --plot p.png
    duplex eval vap --split test --noisy                # Silero-like corrupted user input

Thresholds of the non-M2 tasks come from the checkpoint (tuned on the
validation split); shift/hold is always decided at 0.5 (M2).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from duplex.models.vap.checkpoint import load_model, read_meta

from . import scoring
from .augment import augment_va
from .data import switchboard_va


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="duplex eval vap", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", default="test", choices=("train", "val", "test"))
    ap.add_argument("--checkpoint", default=None, help="checkpoint dir/stem/file (default: shipped)")
    ap.add_argument("--data", default=None, help="Switchboard word timings (.jsonl.gz)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N dialogues")
    ap.add_argument("--noisy", action="store_true",
                    help="corrupt the input of speaker 0 like a VAD would (labels stay clean)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--report", default=None, help="also write the figures to this JSON file")
    ap.add_argument("--plot", default=None, help="PNG of p_now / p_future over a stretch")
    ap.add_argument("--plot-dialogue", type=int, default=0, help="index of the dialogue to plot")
    ap.add_argument("--plot-start", type=float, default=60.0, help="seconds")
    ap.add_argument("--plot-seconds", type=float, default=30.0)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error(f"--device {args.device}: CUDA is not available on this machine")
    return args


def noisy_inputs(vas: list[np.ndarray], seed: int = 0) -> list[np.ndarray]:
    """Speaker 0 always corrupted (the user's VAD), speaker 1 clean (playback)."""
    rng = np.random.default_rng(seed)
    out = []
    for va in vas:
        x = va.astype(np.float32).copy()
        x[:, :1] = augment_va(x[:, :1], rng, p_channel=1.0)
        out.append(x)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else list(argv))
    torch.set_num_threads(args.threads)
    t0 = time.time()
    model = load_model(args.checkpoint, args.device)
    if model.cfg.input != "va":
        raise SystemExit("duplex eval vap scores voice-activity models on Switchboard; this "
                         "checkpoint takes audio (evaluate it with recipes.vap.scoring on a corpus)")
    meta = read_meta(args.checkpoint)
    vas = switchboard_va(args.split, args.data, args.limit)
    inputs = noisy_inputs(vas) if args.noisy else None
    collected = scoring.collect(model, vas, inputs, progress=not args.no_progress,
                                desc=f"{args.split} events")
    result = scoring.summarize(collected, meta.get("thresholds"))
    result["info"] = {"split": args.split, "dialogues": len(vas), "noisy_input": args.noisy,
                      "checkpoint": str(args.checkpoint or "shipped"),
                      "seconds": round(time.time() - t0, 1)}
    if args.plot:
        from .plots import plot_projection

        i = min(args.plot_dialogue, len(vas) - 1)
        probs = scoring.predict(model, vas[i] if inputs is None else inputs[i])
        plot_projection(vas[i], probs, args.plot, args.plot_start, args.plot_seconds,
                        title=f"Switchboard {args.split} dialogue {i}: projections for speaker 0")
        result["info"]["plot"] = args.plot
    text = json.dumps(result, indent=2)
    print(text)
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
