"""`python -m duplex.recipes.vap.report`: the evaluation report written beside
a checkpoint: event metrics on the test split (clean and Silero-like input),
the policy comparison with silence thresholds, the runtime cost per frame,
and two small figures.

    python -m duplex.recipes.vap.report                     # shipped checkpoint, models/assets/vap
    python -m duplex.recipes.vap.report --checkpoint runs/vap --out runs/vap --limit 50

Writes report.json, report.md, projection.png and compare.png.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from duplex.config import TurnConfig
from duplex.models.vap.checkpoint import ASSET_DIR, load_model, read_meta, resolve
from duplex.models.vap.runtime import VAPRuntime
from duplex.vap import metrics
from duplex.vap.events import extract_events

from . import compare, scoring
from .bench import bench
from .data import switchboard_va
from .evaluate import noisy_inputs
from .plots import plot_comparison, plot_projection

TASK_NOTES = {
    "shift_hold": "P(shift) = mean p_now of the other speaker over [t_sil+0.05, t_sil+0.25] s; shift if > 0.5 (M2)",
    "shift_prediction": "mean p_future of the other speaker over the last 0.5 s of speech before a shift/hold",
    "backchannel": "mean P(backchannel) of the listener over the 0.5 s before a backchannel vs. 0.5 s windows inside the other's turn",
    "short_long": "mean p_future of the onset speaker over the first 0.2 s of a long (>= 1 s) onset vs. a backchannel",
}


def _row(task: str, r: dict) -> str:
    return (f"| {task} | {r['bacc']:.3f} | {r['weighted_f1']:.3f} | {r['auc']:.3f} | {r['threshold']:g} "
            f"| {r['bacc_at_0.5']:.3f} | {r['n_pos']} / {r['n_neg']} |")


def markdown(rep: dict) -> str:
    tr = rep["training"]
    lines = [
        "# VAP voice-activity checkpoint: evaluation report",
        "",
        f"Model: {rep['model']['params']} parameters, width {rep['model']['dim']}, "
        f"{rep['model']['channel_layers']} + {rep['model']['cross_layers']} layers, "
        f"{rep['model']['context_frames'] / 50:g} s attention window; trained {tr['steps']} steps "
        f"(batch {tr['batch_size']} x {tr['chunk_s']} s chunks, {tr['minutes']} min on {tr['device']}, "
        f"{tr['threads']} threads, VA augmentation {'on' if tr['augment'] else 'off'}).",
        *([f"`duplex train vap {' '.join(tr['argv'])}`."] if tr.get("argv") else []),
        *([tr["note"] + "."] if tr.get("note") else []),
        "",
        f"## Switchboard {rep['test']['info']['split']} split ({rep['test']['info']['dialogues']} dialogues)",
        "",
        "Thresholds of the tasks other than shift/hold were tuned on the validation split.",
        "",
        "| task | bAcc | weighted F1 | AUC | threshold | bAcc at 0.5 | events (pos / neg) |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [_row(t, rep["test"][t]) for t in metrics.TASKS]
    lines += ["", *(f"- {t}: {n}" for t, n in TASK_NOTES.items())]
    lines += ["", "This model sees voice activity only (who is voiced, frame by frame), not audio. At "
              "the start of a silence that tells little about who speaks next: its P(shift) stays "
              "under 0.5 for almost every event, so M2 at the fixed 0.5 threshold is near chance, and "
              "the AUC shows how much ranking information there is. Published audio VAP models "
              "reach 0.76-0.79 shift/hold bAcc from prosody and words."]
    if "test_noisy" in rep:
        nz = rep["test_noisy"]
        lines += ["", f"With the user's channel corrupted like a VAD output (soft, jittered, blips; "
                      f"{nz['info']['dialogues']} dialogues): shift/hold bAcc "
                      f"{nz['shift_hold']['bacc']:.3f}, shift prediction {nz['shift_prediction']['bacc']:.3f}, "
                      f"backchannel {nz['backchannel']['bacc']:.3f}, short/long {nz['short_long']['bacc']:.3f}."]
    c = rep["compare"]
    lines += [
        "", f"## Policy comparison ({c['dialogues']} {c['split']} dialogues replayed as voice-activity streams)",
        "", f"{c['points']} decision points (silences >= {c['config']['min_gap_ms']} ms after a speaker's "
        f"speech): {c['shifts']} shifts, {c['holds']} holds. Human gap on these shifts: median "
        f"{c['human_gap_median_ms']:.0f} ms.", "", compare.markdown_table(c), "",
        "VAP parameters chosen on validation dialogues for the take-over budget of each silence "
        "threshold, measured on test (budget of T ms -> taking the floor in a hold, median / mean gap): "
        + ", ".join(f"{p['budget_of_ms']} -> {p['false_takeover']:.1%}, {p['gap_median_ms']:.0f} / "
                    f"{p['gap_mean_ms']:.0f} ms" for p in c["vap_sweep"]) + ".",
        "", "![comparison](compare.png)", "",
        "## Backchannel opportunities (validation dialogues)", "",
        f"While the user holds the floor ({rep['opportunities']['floor_minutes']} min), the human "
        f"listener backchannelled {rep['opportunities']['human_backchannels_per_min']} times a minute. "
        "BACKCHANNEL_OPPORTUNITY (at most one per 4 s) per threshold on P(agent backchannel): "
        + ", ".join(f"{o['threshold']:g} -> {o['per_min']}/min ({o['followed_by_human_bc']:.1%} followed "
                    f"by a human backchannel within 1 s)" for o in rep["opportunities"]["opportunities"])
        + ".", "",
        "## Runtime cost (onnxruntime, 1 intra-op thread, this CPU, shared)", "",
        f"- one stream: median {rep['bench']['step_ms_median']} ms per 20 ms frame "
        f"(mean {rep['bench']['step_ms_mean']}, p99 {rep['bench']['step_ms_p99']})",
        f"- 16 streams per call: {rep['bench']['step_many_16_ms_per_stream']} ms per stream per frame",
        "", "## A stretch of dialogue", "", "![projection](projection.png)", "",
    ]
    return "\n".join(lines)


def busiest_stretch(va, seconds: float) -> float:
    """Start (s) of the stretch with the most shifts (else holds): the one worth plotting."""
    ev = extract_events(va)
    starts = (ev["shift"][:, 0] if len(ev["shift"]) else ev["hold"][:, 0]) / 50.0
    if not len(starts):
        return 0.0
    counts = [((starts >= s) & (starts < s + seconds - 2)).sum() for s in starts - 2]
    return float(max(0.0, starts[int(np.argmax(counts))] - 2))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m duplex.recipes.vap.report", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--out", default=str(ASSET_DIR))
    ap.add_argument("--limit", type=int, default=None, help="test dialogues for the metrics")
    ap.add_argument("--noisy-limit", type=int, default=100, help="dialogues for the noisy-input figures")
    ap.add_argument("--compare-limit", type=int, default=None, help="dialogues for the comparison")
    ap.add_argument("--val-limit", type=int, default=60,
                    help="validation dialogues the comparison tunes the VAP policy on")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    model = load_model(args.checkpoint)
    meta = read_meta(args.checkpoint)
    th = meta.get("thresholds")
    prog = not args.no_progress
    vas = switchboard_va("test", limit=args.limit)
    rep: dict = {"checkpoint": str(resolve(args.checkpoint, ".pt")), "model": dict(meta["model"]),
                 "training": {k: v for k, v in meta["training"].items() if k != "history"},
                 "thresholds": th, "val": meta.get("val")}
    rep["model"]["params"] = sum(p.numel() for p in model.parameters())
    rep["test"] = scoring.summarize(scoring.collect(model, vas, progress=prog, desc="test"), th)
    rep["test"]["info"] = {"split": "test", "dialogues": len(vas)}
    nv = vas[: args.noisy_limit]
    rep["test_noisy"] = scoring.summarize(
        scoring.collect(model, nv, noisy_inputs(nv), progress=prog, desc="test, noisy input"), th)
    rep["test_noisy"]["info"] = {"split": "test", "dialogues": len(nv)}
    cv = vas[: args.compare_limit] if args.compare_limit else vas
    c = compare.run(model, cv, switchboard_va("val", limit=args.val_limit), TurnConfig(), 300, prog,
                    check=300)
    c.update(dialogues=len(cv), split="test")
    plot_comparison(c, out / "compare.png")
    rep["compare"] = {k: v for k, v in c.items() if k != "gaps_ms"}
    rep["opportunities"] = compare.opportunity_rates(
        model, switchboard_va("val", limit=args.val_limit),
        thresholds=(0.06, 0.08, 0.09, 0.1, 0.105, 0.11, 0.12, 0.15), progress=prog)
    rep["opportunities"]["split"] = "val"
    rep["bench"] = bench(VAPRuntime.load(args.checkpoint), frames=2000)
    start = busiest_stretch(vas[0], 30.0)
    plot_projection(vas[0], scoring.predict(model, vas[0]), out / "projection.png", start, 30.0,
                    title=f"Switchboard test dialogue 0, {start:.0f}-{start + 30:.0f} s: "
                          "projections for speaker 0")
    rep["seconds"] = round(time.time() - t0, 1)
    (out / "report.json").write_text(json.dumps(rep, indent=2, default=compare._plain) + "\n")
    (out / "report.md").write_text(markdown(rep))
    print(markdown(rep))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
