"""Silero VAD (the ONNX model inside pip `silero-vad`) run with onnxruntime.

Inference matches the official `silero_vad.utils_vad.OnnxWrapper` at 16 kHz:
512-sample windows, each preceded by the last 64 samples of the previous
window (zeros at the start), with the recurrent state [2, 1, 128] carried
from window to window. The turn-taking frame is 20 ms (320 samples), so
windows (32 ms) and frames do not line up: each frame gets the probability
of the latest window that ended at or before the frame's end (0.0 before
the first window completes). That keeps it causal.

One InferenceSession per model file is shared by all instances (onnxruntime
allows concurrent `run` calls); each instance holds only its own stream state.
"""
from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np

from duplex.errors import ModelUnavailable
from duplex.interfaces import FRAME_SAMPLES, INPUT_RATE
from duplex.models.inputs import mono_float32

WINDOW = 512  # samples per model call at 16 kHz
CONTEXT = 64  # samples of the previous window prepended to each call
STATE_SHAPE = (2, 1, 128)

_sessions: dict[str, object] = {}
_sessions_lock = threading.Lock()


def default_model_path() -> Path:
    """The ONNX file shipped in pip `silero-vad`.

    Found with `find_spec`, which does not run the package: importing
    `silero_vad` imports torch and calls `torch.set_num_threads(1)` for the
    whole process (importlib.resources would do that too).
    """
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable("vad", "silero_vad.onnx", "the `silero-vad` package is not installed",
                               "pip install silero-vad, or set vad.model=/path/to/silero_vad.onnx")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"


def shared_session(path: str | Path):
    """One onnxruntime session per model path for the whole process (single-threaded ops)."""
    import onnxruntime

    key = str(Path(path).resolve())
    with _sessions_lock:
        session = _sessions.get(key)
        if session is None:
            if not Path(key).is_file():
                raise ModelUnavailable("vad", str(path), f"no such file {key}",
                                       "set vad.model to a Silero VAD .onnx file, or leave it empty "
                                       "for the one inside pip `silero-vad`")
            opts = onnxruntime.SessionOptions()
            opts.intra_op_num_threads = 1  # as the official wrapper: one frame is tiny
            opts.inter_op_num_threads = 1
            try:
                session = onnxruntime.InferenceSession(key, sess_options=opts,
                                                       providers=["CPUExecutionProvider"])
            except Exception as exc:
                raise ModelUnavailable("vad", str(path), f"onnxruntime cannot load it ({exc})") from exc
            _sessions[key] = session
        return session


class SileroVAD:
    """Streaming speech probability per 20 ms frame (see the module docstring)."""

    name = "silero"

    def __init__(self, model_path: str = ""):
        self.model_path = Path(model_path).expanduser() if model_path else default_model_path()
        self._session = shared_session(self.model_path)
        self._sr = np.array(INPUT_RATE, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        """Forget all audio and the recurrent state."""
        self._state = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)  # samples not yet in a completed frame
        self._window = np.zeros(0, dtype=np.float32)  # samples of the window being filled
        self._prob = 0.0  # probability of the latest completed window

    def _run_window(self, window: np.ndarray) -> float:
        x = np.concatenate([self._context, window])[None, :]
        out, self._state = self._session.run(None, {"input": x, "state": self._state, "sr": self._sr})
        self._context = window[-CONTEXT:].copy()
        return float(out[0, 0])

    def process(self, audio: np.ndarray) -> np.ndarray:
        """Add 16 kHz float32 mono samples; one probability per completed 20 ms frame."""
        self._pending = np.concatenate([self._pending, mono_float32(audio, "SileroVAD.process")])
        n_frames = len(self._pending) // FRAME_SAMPLES
        probs = np.empty(n_frames, dtype=np.float32)
        for i in range(n_frames):
            frame = self._pending[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES]
            self._window = np.concatenate([self._window, frame])
            if len(self._window) >= WINDOW:  # a window completes inside (or at the end of) this frame
                self._prob = self._run_window(self._window[:WINDOW])
                self._window = self._window[WINDOW:]
            probs[i] = self._prob
        self._pending = self._pending[n_frames * FRAME_SAMPLES:]
        return probs
