"""Streaming VAP inference with onnxruntime, one 20 ms frame at a time.

One `VAPRuntime` (an ONNX session, single intra-op thread) is shared by all
sessions; `InferenceSession.run` is thread-safe. Each session gets its own
`VAPStream` (keys/values of the last `context_s` seconds in a ring buffer,
plus the input window of the encoder); a stream must be stepped by one thread
at a time. `VAPStreamBatch` steps n streams in lockstep in one call (offline
replays, benchmarks).

Speaker 0 is the user (microphone), speaker 1 the agent (its own output).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from duplex.errors import ModelUnavailable
from duplex.turn.base import VapOutput

from . import checkpoint


class VAPRuntime:
    def __init__(self, onnx_path: str | Path, meta: dict, threads: int = 1):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise ModelUnavailable("turn", str(onnx_path), f"onnxruntime cannot load it ({e})",
                                   checkpoint.HINT) from e
        self.path, self.meta = Path(onnx_path), meta
        m = meta["model"]
        self.kind: str = m["input"]
        self.frame_hz: int = m["frame_hz"]
        try:
            self.window, self.hop = int(meta["stream"]["window"]), int(meta["stream"]["hop"])
        except (KeyError, TypeError, ValueError) as e:
            raise ModelUnavailable("turn", str(onnx_path), f"metadata lacks stream.window/hop ({e})",
                                   checkpoint.HINT) from e
        self.n_att = m["channel_layers"] + 2 * m["cross_layers"]
        self.heads, self.head_dim = m["heads"], m["dim"] // m["heads"]
        self.trained_context_s = m["context_frames"] / m["frame_hz"]
        self.thresholds: dict = meta.get("thresholds", {})

    @classmethod
    def load(cls, path: str | Path | None = None, threads: int = 1) -> "VAPRuntime":
        """From an .onnx file, a directory or a stem with .onnx + .json; None or
        "" = the checkpoint shipped in models/assets/vap/."""
        onnx_path = checkpoint.resolve(path or None, ".onnx")
        return cls(onnx_path, checkpoint.read_meta(onnx_path), threads)

    def stream(self, context_s: float = 5.0) -> "VAPStream":
        return VAPStream(self, context_s)

    def stream_batch(self, n: int, context_s: float = 5.0) -> "VAPStreamBatch":
        return VAPStreamBatch(self, n, context_s)

    def run(self, window, cache, age, valid):
        return self.session.run(None, {"window": window, "cache": cache, "age": age, "valid": valid})


class VAPStreamBatch:
    """n streams stepped together, one frame per `step_arrays` call."""

    def __init__(self, rt: VAPRuntime, n: int, context_s: float = 5.0):
        if n < 1:
            raise ValueError(f"need at least one stream, got {n}")
        if not context_s > 0:
            raise ValueError(f"context_s must be > 0, got {context_s}")
        self.rt, self.n = rt, n
        self.context_frames = max(1, int(round(context_s * rt.frame_hz)))
        self.cache_frames = max(1, self.context_frames - 1)  # plus the current frame
        self.reset()

    def reset(self) -> None:
        rt, c = self.rt, self.cache_frames
        self._buf = np.zeros((self.n, 2, rt.window), np.float32)
        self._cache = np.zeros((rt.n_att, 2, self.n, 2, rt.heads, c, rt.head_dim), np.float32)
        self._slot_frame = np.full(c, -1, np.int64)
        self.t = 0  # frames stepped

    def step_arrays(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """frames: (n, 2, hop) new input of both channels. Returns p_now,
        p_future, p_bc, p_va, each (n, 2)."""
        rt = self.rt
        frames = np.asarray(frames, np.float32)
        if frames.shape != (self.n, 2, rt.hop):
            raise ValueError(f"expected frames shaped {(self.n, 2, rt.hop)}, got {frames.shape}")
        if not np.isfinite(frames).all():
            raise ValueError("VAP input contains NaN or infinity")
        buf = self._buf
        buf[:, :, : rt.window - rt.hop] = buf[:, :, rt.hop:].copy()
        buf[:, :, rt.window - rt.hop:] = frames
        valid = self._slot_frame >= 0
        age = np.where(valid, self.t - self._slot_frame, 0).astype(np.float32)
        age = np.broadcast_to(age, (self.n, self.cache_frames)).copy()
        val = np.broadcast_to(valid.astype(np.float32), (self.n, self.cache_frames)).copy()
        p_now, p_fut, p_bc, p_va, new_kv = rt.run(buf, self._cache, age, val)
        slot = self.t % self.cache_frames
        self._cache[:, :, :, :, :, slot] = new_kv[:, :, :, :, :, 0]
        self._slot_frame[slot] = self.t
        self.t += 1
        return {"p_now": p_now, "p_future": p_fut, "p_bc": p_bc, "p_va": p_va}

    def step_many(self, p_user, agent_active) -> list[VapOutput]:
        """Voice-activity model: one frame of every stream."""
        if self.rt.kind != "va":
            raise ValueError("this VAP model takes audio; use step_arrays with (n, 2, hop) samples")
        pu = np.asarray(p_user, np.float32).reshape(self.n)
        if np.isnan(pu).any() or (pu < 0).any() or (pu > 1).any():
            raise ValueError(f"p_user must be speech probabilities in [0, 1], got {pu}")
        aa = np.asarray(agent_active, np.float32).reshape(self.n)
        out = self.step_arrays(np.stack([pu, aa], 1)[:, :, None])
        return [_output(out, i) for i in range(self.n)]


def _output(out: dict, i: int) -> VapOutput:
    bc = (float(out["p_bc"][i, 0]), float(out["p_bc"][i, 1]))
    return VapOutput(
        p_now=(float(out["p_now"][i, 0]), float(out["p_now"][i, 1])),
        p_future=(float(out["p_future"][i, 0]), float(out["p_future"][i, 1])),
        p_va=(float(out["p_va"][i, 0]), float(out["p_va"][i, 1])),
        p_backchannel=bc[0], p_bc=bc)


class VAPStream:
    """One session's stream: `step(p_user, agent_active)` per 20 ms frame."""

    def __init__(self, rt: VAPRuntime, context_s: float = 5.0):
        self._b = VAPStreamBatch(rt, 1, context_s)

    @property
    def t(self) -> int:
        return self._b.t

    def reset(self) -> None:
        self._b.reset()

    def step(self, p_user: float, agent_active: bool) -> VapOutput:
        return self._b.step_many([p_user], [float(bool(agent_active))])[0]

    def step_audio(self, user: np.ndarray, agent: np.ndarray) -> VapOutput:
        """Audio model: one frame (hop samples at 16 kHz) of each channel."""
        if self._b.rt.kind != "audio":
            raise ValueError("this VAP model takes voice activity; use step(p_user, agent_active)")
        out = self._b.step_arrays(np.stack([user, agent])[None])
        return _output(out, 0)
