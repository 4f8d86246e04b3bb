"""Saving and loading VAP checkpoints.

A checkpoint is a directory or a stem: `<stem>.pt` (torch weights + model
config), `<stem>.onnx` (the streaming step, see export.py) and `<stem>.json`
(model config, decision thresholds tuned on the validation split, training
and evaluation figures). The shipped one is models/assets/vap/vap_va.*.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from duplex.errors import ModelUnavailable

from .model import VAPModel, VAPModelConfig

ASSET_DIR = Path(__file__).resolve().parent.parent / "assets" / "vap"
DEFAULT_STEM = "vap_va"
HINT = ("train one with `duplex train vap --out DIR` and pass DIR (or DIR/vap_va.onnx) as "
        "--set turn.vap_model=..., or use --set turn.engine=vad")


def resolve(path: str | Path | None, suffix: str) -> Path:
    """The file with `suffix` for a checkpoint given as None (shipped), a
    directory, a stem or any of its files."""
    p = Path(path) if path else ASSET_DIR
    if p.is_dir():
        cands = sorted(p.glob(f"*{suffix}"))
        preferred = p / f"{DEFAULT_STEM}{suffix}"
        p = preferred if preferred.exists() else (cands[0] if len(cands) == 1 else preferred)
    elif p.suffix in (".pt", ".onnx", ".json"):
        p = p.with_suffix(suffix)
    else:
        p = p.with_name(p.name + suffix)
    if not p.exists():
        raise ModelUnavailable("turn", str(path or p), f"{p} does not exist", HINT)
    return p


def read_meta(path: str | Path | None) -> dict:
    p = resolve(path, ".json")
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ModelUnavailable("turn", str(p), f"unreadable metadata ({e})", HINT) from e


def save_model(stem: str | Path, model: VAPModel, meta: dict | None = None) -> Path:
    """Write <stem>.pt and <stem>.json (meta merged with the model config)."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    pt = stem.with_name(stem.name + ".pt")
    torch.save({"config": model.cfg.to_dict(),
                "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}, pt)
    info = dict(meta or {})
    info["model"] = model.cfg.to_dict()
    # what a streaming runtime needs to feed the encoder: input units per frame
    info["stream"] = {"window": model.encoder.window, "hop": model.encoder.hop}
    stem.with_name(stem.name + ".json").write_text(json.dumps(info, indent=2) + "\n")
    return pt


def load_model(path: str | Path | None = None, device: str = "cpu") -> VAPModel:
    """A VAPModel from a .pt checkpoint (None = the shipped one), in eval mode."""
    p = resolve(path, ".pt")
    try:
        ckpt = torch.load(p, map_location=device, weights_only=True)
        model = VAPModel(VAPModelConfig.from_dict(ckpt["config"]))
        model.load_state_dict(ckpt["state_dict"])
    except (OSError, RuntimeError, KeyError, ValueError) as e:
        raise ModelUnavailable("turn", str(p), f"not a VAP checkpoint ({e})", HINT) from e
    return model.to(device).eval()
