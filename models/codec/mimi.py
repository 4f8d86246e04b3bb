"""Mimi (transformers `MimiModel`): 24 kHz audio, 12.5 Hz frames, split RVQ.

The first codebook is the semantic one; `num_codebooks` keeps the first Q
(Moshi uses 8, our default is 4). Streaming is exact: encoding or decoding a
signal chunk by chunk gives the codes / audio of the offline call.

- Encoder: transformers' own streaming path (`use_streaming`, a padding
  cache for the causal convolutions and a KV cache for the transformer).
- Decoder: transformers has no streaming decoder, so `MimiDecoderStream`
  walks the decoder's layers itself: causal convolutions keep their last
  inputs, transposed convolutions keep the overlapping tail of their output
  (bias removed, so it is not added twice), the transformer keeps its KV cache.
"""
from __future__ import annotations

import numpy as np
import torch

from .base import FrameBuffer, check_audio, check_codes, check_num_codebooks, pad_to_frames


class MimiCodec:
    def __init__(self, model, num_codebooks: int = 4, name: str = "mimi", device: str = "cpu"):
        from transformers import MimiModel

        if not isinstance(model, MimiModel):
            raise TypeError(f"MimiCodec wraps a transformers MimiModel, got {type(model).__name__}")
        cfg = model.config
        if not cfg.use_causal_conv or cfg.trim_right_ratio != 1.0:
            raise ValueError("streaming Mimi needs causal convolutions with trim_right_ratio 1.0")
        self.model = model.to(device).eval()
        self.device = device
        self.name = name
        self.sample_rate = int(cfg.sampling_rate)
        self.frame_rate = float(cfg.frame_rate)
        self.frame_size = int(round(self.sample_rate / self.frame_rate))
        self.codebook_size = int(cfg.codebook_size)
        self.num_codebooks = check_num_codebooks(num_codebooks, cfg.num_quantizers, name)
        self.dtype = next(model.parameters()).dtype

    def _tensor(self, audio: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(audio).to(self.device, self.dtype)[None, None]

    @torch.inference_mode()
    def encode(self, audio: np.ndarray) -> np.ndarray:
        audio = pad_to_frames(check_audio(audio), self.frame_size)
        if audio.size == 0:
            return np.zeros((self.num_codebooks, 0), np.int64)
        out = self.model.encode(self._tensor(audio), num_quantizers=self.num_codebooks)
        return out.audio_codes[0].cpu().numpy().astype(np.int64)

    @torch.inference_mode()
    def decode(self, codes: np.ndarray) -> np.ndarray:
        codes = check_codes(codes, self.num_codebooks, self.codebook_size)
        if codes.shape[1] == 0:
            return np.zeros(0, np.float32)
        audio = self.model.decode(torch.from_numpy(codes).to(self.device)[None]).audio_values
        return audio[0, 0].float().cpu().numpy()

    def encoder_stream(self) -> MimiEncoderStream:
        return MimiEncoderStream(self)

    def decoder_stream(self) -> MimiDecoderStream:
        return MimiDecoderStream(self)


class MimiEncoderStream:
    def __init__(self, codec: MimiCodec):
        self.codec = codec
        self.buffer = FrameBuffer(codec.frame_size)
        self.reset()

    def reset(self) -> None:
        self.buffer.reset()
        self._padding_cache = None
        self._kv = None

    @torch.inference_mode()
    def encode(self, audio: np.ndarray) -> np.ndarray:
        ready = self.buffer.take(audio)
        if ready.size == 0:
            return np.zeros((self.codec.num_codebooks, 0), np.int64)
        out = self.codec.model.encode(
            self.codec._tensor(ready), num_quantizers=self.codec.num_codebooks, use_streaming=True,
            padding_cache=self._padding_cache, encoder_past_key_values=self._kv)
        self._padding_cache, self._kv = out.padding_cache, out.encoder_past_key_values
        return out.audio_codes[0].cpu().numpy().astype(np.int64)


class MimiDecoderStream:
    def __init__(self, codec: MimiCodec):
        from transformers.models.mimi.modeling_mimi import (
            MimiConv1d,
            MimiConvTranspose1d,
            MimiResnetBlock,
        )

        self._conv_t, self._conv_tr_t = MimiConv1d, MimiConvTranspose1d
        self._res_t = MimiResnetBlock
        self.codec = codec
        self.decoder = codec.model.decoder
        # left context of each causal convolution, read once (not per call: on a GPU
        # reading a buffer is a sync)
        self._pad: dict[int, int] = {}
        for m in self.decoder.modules():
            if isinstance(m, MimiConv1d):
                if int(m.stride) != 1:
                    raise ValueError("streaming decode expects stride-1 decoder convolutions")
                self._pad[id(m)] = int(m.padding_total)
        self.reset()

    def reset(self) -> None:
        self._state: dict[int, torch.Tensor] = {}
        self._kv = None

    def _conv(self, layer, x: torch.Tensor) -> torch.Tensor:
        """Causal convolution: prepend the inputs the previous call left over."""
        pad = self._pad[id(layer)]
        prev = self._state.get(id(layer))
        if prev is None:
            if layer.pad_mode == "replicate":
                prev = x[..., :1].expand(-1, -1, pad)
            else:
                prev = x.new_zeros(x.shape[0], x.shape[1], pad)
        x = torch.cat([prev, x], dim=-1)
        self._state[id(layer)] = x[..., x.shape[-1] - pad:]
        return layer.conv(x)

    def _conv_transpose(self, layer, x: torch.Tensor) -> torch.Tensor:
        """Transposed convolution: overlap-add the tail the previous call left over."""
        y = layer.conv(x)
        tail = layer.padding_right  # kernel - stride: overlaps the next call's output
        prev = self._state.get(id(layer))
        if prev is not None:
            y = torch.cat([y[..., :tail] + prev, y[..., tail:]], dim=-1)
        keep = y.shape[-1] - tail
        rest = y[..., keep:]
        if layer.conv.bias is not None:
            rest = rest - layer.conv.bias[None, :, None]
        self._state[id(layer)] = rest
        return y[..., :keep]

    def _layer(self, layer, x: torch.Tensor) -> torch.Tensor:
        if isinstance(layer, self._conv_t):
            return self._conv(layer, x)
        if isinstance(layer, self._conv_tr_t):
            return self._conv_transpose(layer, x)
        if isinstance(layer, self._res_t):
            h = x
            for sub in layer.block:
                h = self._layer(sub, h)
            return self._layer(layer.shortcut, x) + h
        return layer(x)

    @torch.inference_mode()
    def decode(self, codes: np.ndarray) -> np.ndarray:
        codec = self.codec
        codes = check_codes(codes, codec.num_codebooks, codec.codebook_size)
        if codes.shape[1] == 0:
            return np.zeros(0, np.float32)
        h = codec.model.quantizer.decode(torch.from_numpy(codes).to(codec.device)[None])
        if self.decoder.upsample is not None:
            h = self._conv_transpose(self.decoder.upsample, h)
        out = self.decoder.decoder_transformer(h.transpose(1, 2), past_key_values=self._kv,
                                               use_cache=True)
        self._kv = out.past_key_values
        h = out.last_hidden_state.transpose(1, 2)
        for layer in self.decoder.decoder_seanet.layers:
            h = self._layer(layer, h)
        return h[0, 0].float().cpu().numpy()
