"""Validation of the audio that engines receive (mono float32 in [-1, 1])."""
from __future__ import annotations

import numpy as np


def mono_float32(audio, who: str) -> np.ndarray:
    """`audio` as a 1-D float32 array; a clear ValueError for anything else."""
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(f"{who} expects mono 1-D audio, got shape {audio.shape}")
    if audio.size and not np.issubdtype(audio.dtype, np.floating):
        raise ValueError(f"{who} expects float audio in [-1, 1], got {audio.dtype} "
                         "(convert PCM16 with duplex.audio.pcm16_to_float)")
    return audio.astype(np.float32, copy=False)
