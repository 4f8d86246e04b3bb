"""`python -m duplex.recipes.vap.bench`: cost of the streaming VAP runtime per
20 ms frame on this CPU (onnxruntime, one intra-op thread), as JSON.

Measures `VAPStream.step` (one session) and `VAPStreamBatch.step_many` (n
sessions per call) with a full context, after a warm-up.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from duplex.models.vap.runtime import VAPRuntime


def bench(rt: VAPRuntime, frames: int = 1000, batch: int = 16, context_s: float = 5.0) -> dict:
    rng = np.random.default_rng(0)
    p = rng.random(frames + 300).astype(np.float32)
    a = rng.random(frames + 300) > 0.5
    s = rt.stream(context_s)
    for i in range(300):  # fill the context
        s.step(float(p[i]), bool(a[i]))
    times = []
    for i in range(300, 300 + frames):
        t0 = time.perf_counter()
        s.step(float(p[i]), bool(a[i]))
        times.append(time.perf_counter() - t0)
    b = rt.stream_batch(batch, context_s)
    for i in range(300):
        b.step_many(np.full(batch, p[i]), np.full(batch, a[i]))
    t0 = time.perf_counter()
    n = max(50, frames // 4)
    for i in range(n):
        b.step_many(np.full(batch, p[i]), np.full(batch, a[i]))
    per_call = (time.perf_counter() - t0) / n
    ms = np.array(times) * 1000
    return {"model": str(rt.path), "context_s": context_s, "frames": frames,
            "step_ms_median": round(float(np.median(ms)), 4), "step_ms_mean": round(float(ms.mean()), 4),
            "step_ms_p99": round(float(np.percentile(ms, 99)), 4),
            f"step_many_{batch}_ms_per_call": round(per_call * 1000, 4),
            f"step_many_{batch}_ms_per_stream": round(per_call * 1000 / batch, 4)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m duplex.recipes.vap.bench", description=__doc__)
    ap.add_argument("--model", default=None, help="checkpoint (default: shipped)")
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--context-s", type=float, default=5.0)
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    print(json.dumps(bench(VAPRuntime.load(args.model), args.frames, args.batch, args.context_s), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
