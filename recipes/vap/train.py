"""`duplex train vap`: train a VAP model on Switchboard voice activity (or on a
stereo audio corpus), tune decision thresholds on the validation split, and
export the streaming ONNX model.

    duplex train vap --out runs/vap                       # VA model on Switchboard
    duplex train vap --out runs/vap --resume              # continue from runs/vap/last.pt
    duplex train vap --input audio --corpus DIR --out runs/vap_audio
    duplex train vap --out runs/vap --ship                # also copy into models/assets/vap

Writes OUT/last.pt (resumable), OUT/vap_va.{pt,onnx,json} (the checkpoint;
vap_audio.* for audio) and prints the validation figures as JSON.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from duplex.models.vap.checkpoint import ASSET_DIR, save_model
from duplex.models.vap.export import EXPORTERS, export_onnx
from duplex.models.vap.model import VAPModel, VAPModelConfig

from . import scoring
from .data import ChunkSampler, switchboard_va


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="duplex train vap", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/vap", help="output directory")
    ap.add_argument("--input", choices=("va", "audio"), default="va")
    ap.add_argument("--data", default=None, help="Switchboard word timings (.jsonl.gz)")
    ap.add_argument("--corpus", default=None, help="stereo wav + annotation directory (corpus.py); "
                    "required for --input audio")
    ap.add_argument("--limit", type=int, default=None, help="use only this many dialogues per split")
    ap.add_argument("--dim", type=int, default=48)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ff", type=int, default=None, help="feed-forward width (default 3 x dim)")
    ap.add_argument("--channel-layers", type=int, default=1)
    ap.add_argument("--cross-layers", type=int, default=3)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--context-s", type=float, default=5.0, help="attention window")
    ap.add_argument("--chunk-s", type=float, default=6.0, help="training chunk length")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--va-loss", type=float, default=0.5, help="weight of the voice-activity BCE")
    ap.add_argument("--no-augment", action="store_true", help="train on clean voice activity")
    ap.add_argument("--val-every", type=int, default=250)
    ap.add_argument("--val-batches", type=int, default=8)
    ap.add_argument("--val-dialogues", type=int, default=100,
                    help="validation dialogues for threshold tuning and the final figures (0 = all)")
    ap.add_argument("--ckpt-every", type=int, default=250)
    ap.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    ap.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-export", action="store_true", help="skip the ONNX export")
    ap.add_argument("--onnx-exporter", choices=EXPORTERS, default="dynamo",
                    help="dynamo: faster graph, slower export; legacy: instant export")
    ap.add_argument("--ship", action="store_true", help=f"copy the checkpoint into {ASSET_DIR}")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    if args.input == "audio" and not args.corpus:
        ap.error("--input audio needs --corpus DIR (stereo wav + annotations; see `render`)")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error(f"--device {args.device}: CUDA is not available on this machine")
    return args


def load_data(args) -> tuple[list, list, list | None, list | None]:
    """(train VA, val VA, train audio, val audio)."""
    if args.corpus:
        from .corpus import load_corpus

        tr, va = load_corpus(args.corpus, "train", args.limit), load_corpus(args.corpus, "val", args.limit)
        if not tr or not va:
            raise SystemExit(f"{args.corpus}: need train and val items (found {len(tr)} / {len(va)})")
        audio = args.input == "audio"
        return ([d.va for d in tr], [d.va for d in va],
                [d.audio for d in tr] if audio else None, [d.audio for d in va] if audio else None)
    return switchboard_va("train", args.data, args.limit), switchboard_va("val", args.data, args.limit), None, None


def model_config(args) -> VAPModelConfig:
    return VAPModelConfig(input=args.input, dim=args.dim, heads=args.heads, ff=args.ff or 3 * args.dim,
                          channel_layers=args.channel_layers, cross_layers=args.cross_layers,
                          dropout=args.dropout, context_frames=int(round(args.context_s * 50)))


def lr_at(step: int, args) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    frac = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


def loss_of(model, batch, va_weight: float, device) -> tuple[torch.Tensor, dict]:
    out = model(batch.x.to(device))
    ce = F.cross_entropy(out["logits"].flatten(0, 1), batch.target.to(device).flatten())
    bce = F.binary_cross_entropy_with_logits(out["va_logits"], batch.va.to(device))
    return ce + va_weight * bce, {"ce": ce.item(), "va_bce": bce.item()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else list(argv))
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "vap_va" if args.input == "va" else "vap_audio"
    t0 = time.time()
    train_va, val_va, train_audio, val_audio = load_data(args)
    frames = int(round(args.chunk_s * 50))
    sampler = ChunkSampler(train_va, frames, seed=args.seed, augment=not args.no_augment,
                           audio=train_audio)
    val_sampler = ChunkSampler(val_va, frames, seed=1234, augment=False, audio=val_audio)
    val_batches = [val_sampler.sample(args.batch_size) for _ in range(args.val_batches)]

    cfg = model_config(args)
    model = VAPModel(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    step, history = 0, []
    last = out / "last.pt"
    if args.resume and last.exists():
        ck = torch.load(last, map_location=device, weights_only=False)
        if ck["config"] != cfg.to_dict():
            raise SystemExit(f"{last} was trained with another model config: {ck['config']}")
        model.load_state_dict(ck["state_dict"])
        opt.load_state_dict(ck["optimizer"])
        step, history = ck["step"], ck.get("history", [])
        sampler.rng.bit_generator.state = ck["rng"]
        print(f"resumed from {last} at step {step}")

    def save_last():
        torch.save({"config": cfg.to_dict(), "state_dict": model.state_dict(),
                    "optimizer": opt.state_dict(), "step": step, "history": history,
                    "rng": sampler.rng.bit_generator.state, "args": vars(args)}, last)

    def validate() -> float:
        model.eval()
        with torch.no_grad():
            v = float(np.mean([loss_of(model, b, args.va_loss, device)[1]["ce"] for b in val_batches]))
        model.train()
        return v

    n_params = sum(p.numel() for p in model.parameters())
    bar = tqdm(total=args.steps, initial=step, desc=f"train vap ({n_params / 1e3:.0f}k params)",
               disable=args.no_progress, unit="step")
    model.train()
    ema = None
    while step < args.steps:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args)
        loss, parts = loss_of(model, sampler.sample(args.batch_size), args.va_loss, device)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        ema = parts["ce"] if ema is None else 0.98 * ema + 0.02 * parts["ce"]
        bar.update(1)
        bar.set_postfix(ce=f"{ema:.3f}", va=f"{parts['va_bce']:.3f}")
        if step % args.val_every == 0 or step == args.steps:
            history.append({"step": step, "train_ce": round(ema, 4), "val_ce": round(validate(), 4),
                            "minutes": round((time.time() - t0) / 60, 1)})
            bar.write(json.dumps(history[-1]))
        if step % args.ckpt_every == 0 or step == args.steps:
            save_last()
    bar.close()

    # thresholds and figures on validation dialogues (clean VA input)
    model.eval()
    n_val = args.val_dialogues or len(val_va)
    collected = scoring.collect(model, val_va[:n_val], None if val_audio is None else val_audio[:n_val],
                                progress=not args.no_progress, desc="val events")
    thresholds = scoring.tune_thresholds(collected)
    val_figs = scoring.summarize(collected, thresholds)
    meta = {"thresholds": thresholds, "val": val_figs, "val_dialogues": n_val,
            "training": {"steps": step, "batch_size": args.batch_size, "chunk_s": args.chunk_s,
                         "augment": not args.no_augment, "lr": args.lr, "params": n_params,
                         "minutes": round((time.time() - t0) / 60, 1), "device": str(device),
                         "threads": args.threads, "history": history,
                         "argv": sys.argv[1:] if argv is None else list(argv),
                         "data": "corpus " + str(args.corpus) if args.corpus else "switchboard"}}
    model.cpu()
    save_model(out / stem, model, meta)
    if not args.no_export:
        export_onnx(model, out / f"{stem}.onnx", args.onnx_exporter)
    if args.ship:
        ASSET_DIR.mkdir(parents=True, exist_ok=True)
        for suffix in (".pt", ".onnx", ".json"):
            if (out / f"{stem}{suffix}").exists():
                shutil.copy2(out / f"{stem}{suffix}", ASSET_DIR / f"{stem}{suffix}")
    print(json.dumps({"checkpoint": str(out / stem), "val": val_figs, "thresholds": thresholds}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(None))
