"""Offline codecs (EnCodec, DAC) behind the streaming Codec interface.

transformers runs these only on whole signals, so their streams re-run the
model over a sliding window: the last `context_frames` frames plus the new
ones, keeping only the new frames' output. That costs more per chunk than
Mimi's true streaming and matches the offline result only approximately
(exactly once the window reaches back to the start of the signal), which is
enough to swap a codec in for experiments.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .base import FrameBuffer, check_audio, check_codes, check_num_codebooks, pad_to_frames


class WindowedCodec:
    context_frames = 50

    def __init__(self, model, num_codebooks: int, name: str, device: str, *, sample_rate: int,
                 frame_size: int, codebook_size: int, available: int):
        self.model = model.to(device).eval()
        self.name, self.device = name, device
        self.sample_rate = int(sample_rate)
        self.frame_size = int(frame_size)
        self.frame_rate = self.sample_rate / self.frame_size
        self.codebook_size = int(codebook_size)
        self.num_codebooks = check_num_codebooks(num_codebooks, available, name)
        self.dtype = next(model.parameters()).dtype

    def _encode(self, x: torch.Tensor) -> torch.Tensor:  # [1, 1, T] -> [Q, F]
        raise NotImplementedError

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:  # [Q, F] -> [T]
        raise NotImplementedError

    @torch.inference_mode()
    def encode(self, audio: np.ndarray) -> np.ndarray:
        audio = pad_to_frames(check_audio(audio), self.frame_size)
        frames = len(audio) // self.frame_size
        if frames == 0:
            return np.zeros((self.num_codebooks, 0), np.int64)
        x = torch.from_numpy(audio).to(self.device, self.dtype)[None, None]
        codes = self._encode(x)[:, :frames]
        if codes.shape[1] != frames:
            raise RuntimeError(f"{self.name} returned {codes.shape[1]} frames for {frames}")
        return codes.cpu().numpy().astype(np.int64)

    @torch.inference_mode()
    def decode(self, codes: np.ndarray) -> np.ndarray:
        codes = check_codes(codes, self.num_codebooks, self.codebook_size)
        if codes.shape[1] == 0:
            return np.zeros(0, np.float32)
        audio = self._decode(torch.from_numpy(codes).to(self.device))
        return audio[: codes.shape[1] * self.frame_size].float().cpu().numpy()

    def encoder_stream(self) -> WindowedEncoderStream:
        return WindowedEncoderStream(self)

    def decoder_stream(self) -> WindowedDecoderStream:
        return WindowedDecoderStream(self)


class WindowedEncoderStream:
    def __init__(self, codec: WindowedCodec):
        self.codec = codec
        self.buffer = FrameBuffer(codec.frame_size)
        self.reset()

    def reset(self) -> None:
        self.buffer.reset()
        self.context = np.zeros(0, np.float32)

    def encode(self, audio: np.ndarray) -> np.ndarray:
        ready = self.buffer.take(audio)
        n = len(ready) // self.codec.frame_size
        if n == 0:
            return np.zeros((self.codec.num_codebooks, 0), np.int64)
        window = np.concatenate([self.context, ready])
        self.context = window[-self.codec.context_frames * self.codec.frame_size:]
        return self.codec.encode(window)[:, -n:]


class WindowedDecoderStream:
    def __init__(self, codec: WindowedCodec):
        self.codec = codec
        self.reset()

    def reset(self) -> None:
        self.context = np.zeros((self.codec.num_codebooks, 0), np.int64)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        codec = self.codec
        codes = check_codes(codes, codec.num_codebooks, codec.codebook_size)
        n = codes.shape[1]
        if n == 0:
            return np.zeros(0, np.float32)
        window = np.concatenate([self.context, codes], axis=1)
        self.context = window[:, -codec.context_frames:]
        return codec.decode(window)[-n * codec.frame_size:]


class EncodecCodec(WindowedCodec):
    """transformers `EncodecModel` (e.g. facebook/encodec_24khz, 75 Hz)."""

    def __init__(self, model, num_codebooks: int = 4, name: str = "encodec", device: str = "cpu"):
        cfg = model.config
        if cfg.normalize or cfg.chunk_length_s:
            raise ValueError(f"{name}: EnCodec models that normalise or chunk their input "
                             "(the 48 kHz one) are not supported; use facebook/encodec_24khz")
        frame_size = int(np.prod(cfg.upsampling_ratios))
        bits = math.log2(cfg.codebook_size)
        per_bw = {bw: int(bw * 1000 / (cfg.sampling_rate / frame_size * bits))
                  for bw in cfg.target_bandwidths}
        usable = [bw for bw, nq in sorted(per_bw.items()) if nq >= num_codebooks]
        super().__init__(model, num_codebooks, name, device, sample_rate=cfg.sampling_rate,
                         frame_size=frame_size, codebook_size=cfg.codebook_size,
                         available=max(per_bw.values()))
        self.bandwidth = usable[0]  # the smallest bandwidth that has enough codebooks

    def _encode(self, x):
        out = self.model.encode(x, bandwidth=self.bandwidth)
        return out.audio_codes[0, 0, : self.num_codebooks]

    def _decode(self, codes):
        return self.model.decode(codes[None, None], [None]).audio_values[0, 0]


class DacCodec(WindowedCodec):
    """transformers `DacModel` (e.g. descript/dac_16khz)."""

    def __init__(self, model, num_codebooks: int = 4, name: str = "dac", device: str = "cpu"):
        cfg = model.config
        super().__init__(model, num_codebooks, name, device, sample_rate=cfg.sampling_rate,
                         frame_size=cfg.hop_length, codebook_size=cfg.codebook_size,
                         available=cfg.n_codebooks)

    def _encode(self, x):
        codes = self.model.encode(x, n_quantizers=self.num_codebooks).audio_codes
        return codes[0, : self.num_codebooks]

    def _decode(self, codes):
        return self.model.decode(audio_codes=codes[None]).audio_values[0]
