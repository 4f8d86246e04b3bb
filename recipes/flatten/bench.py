"""Cost of the flatten engine per chunk (160 ms): codec encode, LM, codec decode.

    python -m duplex.recipes.flatten.bench --tiny                       # CPU, tiny random model
    python -m duplex.recipes.flatten.bench --backbone Qwen/Qwen2.5-0.5B # untrained 0.5B + Mimi
    python -m duplex.recipes.flatten.bench --model runs/flatten/4-full/final

The cost does not depend on what the weights learned, so an untrained model
(the backbone with its vocabulary extended) measures the real thing. The
input is espeak-ng speech; sampling is on, as in a session. The figure that
matters is `total_ms` per chunk against the chunk's 160 ms: the engine keeps
up with real time only below it, and the end-to-end latency is about one
chunk plus that cost.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from duplex.audio import resample
from duplex.config import FlattenConfig

TEXT = ("well I was thinking about going to the market tomorrow morning because the weather "
        "should be nice and I need some bread and coffee")


def speech(seconds: float, rate: int) -> np.ndarray:
    """espeak-ng speech (white noise if espeak-ng is missing), `seconds` long."""
    audio = np.zeros(0, np.float32)
    if shutil.which("espeak-ng"):
        with tempfile.NamedTemporaryFile(suffix=".wav") as f:
            subprocess.run(["espeak-ng", "-w", f.name, TEXT], check=True, capture_output=True)
            a, sr = sf.read(f.name, dtype="float32")
        audio = resample(a, sr, rate)
    if audio.size == 0:
        audio = (np.random.default_rng(0).standard_normal(rate) * 0.1).astype(np.float32)
    reps = int(np.ceil(seconds * rate / len(audio)))
    return np.tile(audio, reps)[: int(seconds * rate)]


def stats(values_s: list[float]) -> dict:
    ms = np.array(values_s) * 1000
    return {"mean": round(float(ms.mean()), 2), "p50": round(float(np.percentile(ms, 50)), 2),
            "p90": round(float(np.percentile(ms, 90)), 2), "max": round(float(ms.max()), 2)}


def run(engine, seconds: float, warmup_chunks: int = 3) -> dict:
    """Stream `seconds` of speech chunk by chunk; per-chunk costs."""
    stream = engine.stream()
    audio = speech(seconds + warmup_chunks * engine.layout.chunk_ms / 1000, engine.input_rate)
    n = engine.chunk_samples
    enc, lm, dec, total = [], [], [], []
    for i in range(len(audio) // n):
        t0 = time.perf_counter()
        out = stream.step(audio[i * n:(i + 1) * n])
        dt = time.perf_counter() - t0
        if i < warmup_chunks or out.chunks != 1:
            continue
        enc.append(out.encode_s)
        lm.append(out.lm_s)
        dec.append(out.decode_s)
        total.append(dt)
    chunk_s = engine.layout.chunk_ms / 1000
    return {"chunks": len(total), "chunk_ms": engine.layout.chunk_ms,
            "tokens_per_chunk": engine.layout.length, "encode_ms": stats(enc),
            "lm_ms": stats(lm), "decode_ms": stats(dec), "total_ms": stats(total),
            "real_time_factor": round(float(np.mean(total)) / chunk_s, 3)}


def main(argv: list[str] | None = None) -> int:
    import torch
    from duplex.models.codec import load_codec, resolve_device, save_random_codec
    from duplex.models.flatten import FlattenEngine

    from .backbone import save_untrained

    p = argparse.ArgumentParser(prog="python -m duplex.recipes.flatten.bench",
                                description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="a trained flatten model directory")
    src.add_argument("--backbone", help="an LM (Hub id or dir), vocabulary extended, untrained")
    src.add_argument("--tiny", action="store_true", help="the tiny random test LM and codec")
    p.add_argument("--codec", default="kyutai/mimi", help="codec id or directory")
    p.add_argument("--random-codec", choices=("tiny", "full"),
                   help="a random Mimi (tiny, or full size when kyutai/mimi is not at hand)")
    p.add_argument("--num-codebooks", type=int, default=4)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--out", help="write the results as JSON here")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    device = resolve_device(a.device)
    work = Path(tempfile.mkdtemp(prefix="flatten-bench-"))
    try:
        codec_name = a.codec
        if a.random_codec or a.tiny:
            tiny = (a.random_codec or "tiny") == "tiny"
            codec_name = str(save_random_codec(work / "codec", tiny=tiny))
        model = a.model
        if not model:
            backbone = a.backbone
            if a.tiny:
                from duplex.models.tiny import ensure_tiny_llm

                backbone = str(ensure_tiny_llm())
            codec = load_codec(codec_name, a.num_codebooks, "cpu")
            model = str(save_untrained(backbone, codec, work / "model"))
            del codec
        cfg = FlattenConfig(model=model, codec=codec_name, num_codebooks=a.num_codebooks,
                            device=device, dtype=a.dtype, seed=0)
        engine = FlattenEngine.load(cfg)
        result = run(engine, a.seconds)
        result.update({"device": torch.cuda.get_device_name(0) if device.startswith("cuda")
                       else f"cpu ({a.threads} threads)", "model": a.model or a.backbone or "tiny",
                       "lm_params_m": round(engine.lm.num_parameters() / 1e6, 2),
                       "codec": codec_name if not (a.random_codec or a.tiny) else
                       f"random mimi ({a.random_codec or 'tiny'})"})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(result, indent=2)
    print(text)
    if a.out:
        Path(a.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
