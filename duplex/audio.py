"""Audio helpers shared by every layer: PCM16 conversion and resampling.

Audio inside duplex is mono float32 in [-1, 1]; PCM16LE only on the wire and
in files. Resampling uses soxr (streaming, so chunk boundaries leave no clicks).
"""
from __future__ import annotations

import numpy as np
import soxr

ACCEPTED_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)


def pcm16_to_float(data: bytes) -> np.ndarray:
    """PCM16LE bytes -> float32 in [-1, 1). The byte count must be even."""
    if len(data) % 2:
        raise ValueError(f"PCM16 audio needs an even number of bytes, got {len(data)}")
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm16(audio: np.ndarray) -> bytes:
    """float32 -> PCM16LE bytes, clipped to the int16 range."""
    a = np.clip(np.asarray(audio, dtype=np.float32) * 32768.0, -32768, 32767)
    return np.round(a).astype("<i2").tobytes()


def resample(audio: np.ndarray, src: int, dst: int) -> np.ndarray:
    """One-shot resampling of a whole signal."""
    audio = np.asarray(audio, dtype=np.float32)
    if src == dst or audio.size == 0:
        return audio
    return soxr.resample(audio, src, dst).astype(np.float32, copy=False)


class StreamResampler:
    """Resamples a stream chunk by chunk with no seams; identity when rates match."""

    def __init__(self, src: int, dst: int, quality: str = "LQ"):
        # LQ keeps the filter delay low (a few ms down to 16 kHz, ~40 ms up from
        # 8 kHz); HQ would hold back ~100 ms of an 8 kHz stream.
        self.src, self.dst = src, dst
        self._stream = None if src == dst else soxr.ResampleStream(src, dst, 1, dtype="float32",
                                                                   quality=quality)

    def __call__(self, audio: np.ndarray, last: bool = False) -> np.ndarray:
        audio = np.asarray(audio, dtype=np.float32)
        if self._stream is None:
            return audio
        return self._stream.resample_chunk(audio, last=last)


def rms_dbfs(audio: np.ndarray) -> float:
    """Root-mean-square level in dB relative to full scale (-inf for silence)."""
    if audio.size == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    return 20 * np.log10(rms) if rms > 0 else float("-inf")
