"""Per-channel input encoders of the VAP model (shared weights across channels).

Both map a window of raw input ending at a frame to that frame's embedding,
so the full-sequence forward (all windows at once) and the streaming step
(one window per call, kept by the runtime) compute the same thing:

- VAEncoder: the last `va_window` frames of one channel's voice activity
  (a Silero probability or the playback flag in the server, 0/1 word timings
  in training).
- AudioEncoder: the last `audio_window` samples (16 kHz) of one channel: a
  log-mel spectrogram (DFT as a matmul, so it exports to ONNX without STFT
  ops) and a small causal conv stack. For users with stereo dialogue audio;
  the published CPC encoder weights are not available.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F


class VAEncoder(nn.Module):
    kind = "va"

    def __init__(self, dim: int, window: int = 10):
        super().__init__()
        self.window, self.hop = window, 1
        self.net = nn.Sequential(nn.Linear(window, dim), nn.GELU(), nn.Linear(dim, dim))

    def windows(self, va: torch.Tensor) -> torch.Tensor:
        """va (B, N, 2) -> (B, 2, N, window): for each frame the window ending at it."""
        if va.ndim != 3 or va.shape[-1] != 2:
            raise ValueError(f"voice-activity input must be (batch, frames, 2), got {tuple(va.shape)}")
        x = F.pad(va.transpose(1, 2), (self.window - 1, 0))
        return x.unfold(-1, self.window, 1)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        """(..., window) -> (..., dim); input centred so silence is -0.5."""
        return self.net(windows - 0.5)


def mel_filterbank(n_fft: int, n_mels: int, rate: int, fmin: float = 20.0) -> np.ndarray:
    """(n_fft // 2 + 1, n_mels) triangular HTK-mel filters."""
    def mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def hz(m):
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    freqs = np.linspace(0, rate / 2, n_fft // 2 + 1)
    pts = hz(np.linspace(mel(fmin), mel(rate / 2), n_mels + 2))
    fb = np.zeros((len(freqs), n_mels))
    for m in range(n_mels):
        lo, c, hi = pts[m], pts[m + 1], pts[m + 2]
        fb[:, m] = np.clip(np.minimum((freqs - lo) / (c - lo), (hi - freqs) / (hi - c)), 0, None)
    return fb.astype(np.float32)


class AudioEncoder(nn.Module):
    kind = "audio"

    def __init__(self, dim: int, rate: int = 16000, frame_hz: int = 50, n_mels: int = 40,
                 win: int = 400, mel_hop: int = 160, mel_frames: int = 6):
        super().__init__()
        self.hop = rate // frame_hz  # samples per VAP frame
        self.win, self.mel_hop, self.mel_frames = win, mel_hop, mel_frames
        self.window = win + mel_hop * (mel_frames - 1)  # samples seen per frame
        n_fft = 2 ** math.ceil(math.log2(win))
        k = np.arange(n_fft // 2 + 1)
        n = np.arange(win)
        hann = np.hanning(win + 1)[:-1]
        ang = 2 * np.pi * np.outer(n, k) / n_fft
        self.register_buffer("dft_cos", torch.tensor(hann[:, None] * np.cos(ang), dtype=torch.float32))
        self.register_buffer("dft_sin", torch.tensor(hann[:, None] * np.sin(ang), dtype=torch.float32))
        self.register_buffer("mel", torch.tensor(mel_filterbank(n_fft, n_mels, rate)))
        self.conv = nn.Sequential(
            nn.Conv1d(n_mels, dim, 3), nn.GELU(), nn.Conv1d(dim, dim, 3), nn.GELU())
        self.out = nn.Linear(dim * (mel_frames - 4), dim)

    def windows(self, audio: torch.Tensor) -> torch.Tensor:
        """audio (B, 2, samples) -> (B, 2, N, window), N = samples // hop."""
        if audio.ndim != 3 or audio.shape[1] != 2:
            raise ValueError(f"audio input must be (batch, 2, samples), got {tuple(audio.shape)}")
        n = audio.shape[-1] // self.hop
        x = F.pad(audio[..., : n * self.hop], (self.window - self.hop, 0))
        return x.unfold(-1, self.window, self.hop)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        lead = windows.shape[:-1]
        x = windows.reshape(-1, self.window)
        frames = torch.stack([x[:, i * self.mel_hop: i * self.mel_hop + self.win]
                              for i in range(self.mel_frames)], 1)  # (M, F, win)
        power = (frames @ self.dft_cos) ** 2 + (frames @ self.dft_sin) ** 2
        logmel = torch.log(power @ self.mel + 1e-6)  # (M, F, n_mels)
        h = self.conv(logmel.transpose(1, 2))  # (M, dim, F - 4)
        return self.out(h.flatten(1)).reshape(*lead, -1)
