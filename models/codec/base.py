"""What every codec wrapper shares: argument checks and tensor conversion."""
from __future__ import annotations

import numpy as np


def check_audio(audio: np.ndarray) -> np.ndarray:
    """Mono float32 audio, or a clear error."""
    a = np.asarray(audio)
    if a.ndim != 1:
        raise ValueError(f"codec audio must be mono (1-D), got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"codec audio must be float in [-1, 1], got dtype {a.dtype}")
    return a.astype(np.float32, copy=False)


def check_codes(codes: np.ndarray, num_codebooks: int, codebook_size: int) -> np.ndarray:
    """int64 codes shaped [num_codebooks, frames] with values in range, or a clear error."""
    c = np.asarray(codes)
    if c.ndim != 2 or c.shape[0] != num_codebooks:
        raise ValueError(f"codes must be shaped [{num_codebooks}, frames], got {c.shape}")
    if not np.issubdtype(c.dtype, np.integer):
        raise ValueError(f"codes must be integers, got dtype {c.dtype}")
    if c.size and (c.min() < 0 or c.max() >= codebook_size):
        raise ValueError(f"codes must lie in [0, {codebook_size}), got {c.min()}..{c.max()}")
    return c.astype(np.int64, copy=False)


def check_num_codebooks(num_codebooks: int, available: int, name: str) -> int:
    if not 1 <= int(num_codebooks) <= available:
        raise ValueError(f"codec {name!r} has {available} codebooks; num_codebooks must be in "
                         f"1..{available}, got {num_codebooks}")
    return int(num_codebooks)


def pad_to_frames(audio: np.ndarray, frame_size: int) -> np.ndarray:
    """Zero-pad the end to a whole number of frames."""
    rest = (-len(audio)) % frame_size
    return np.concatenate([audio, np.zeros(rest, np.float32)]) if rest else audio


class FrameBuffer:
    """Holds samples until they make whole frames (for the streaming encoders)."""

    def __init__(self, frame_size: int):
        self.frame_size = frame_size
        self.pending = np.zeros(0, np.float32)

    def take(self, audio: np.ndarray) -> np.ndarray:
        """Add samples; return those that complete frames (a multiple of frame_size)."""
        self.pending = np.concatenate([self.pending, check_audio(audio)])
        n = len(self.pending) // self.frame_size * self.frame_size
        ready, self.pending = self.pending[:n], self.pending[n:]
        return ready

    def reset(self) -> None:
        self.pending = np.zeros(0, np.float32)
