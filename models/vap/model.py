"""The VAP model (REFERENCE §2): stereo input, per-channel then cross-channel
causal transformer layers with ALiBi, a 256-class projection head and a
voice-activity head.

Channels are speaker 0 (the user's microphone) and speaker 1 (the agent's own
output); both go through the same weights. Attention is causal and limited to
a window of `context_frames` (the bounded context of the streaming runtime),
so `step` with a cache of the last frames gives exactly the full-sequence
output. `step` is what the ONNX export traces: one frame, a cache of past
keys/values per attention module, and the age of every cached frame.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from duplex.vap import labels

from .encoders import AudioEncoder, VAEncoder


@dataclass
class VAPModelConfig:
    input: str = "va"  # va: per-frame voice activity | audio: 16 kHz waveforms
    dim: int = 64
    heads: int = 4
    ff: int = 192
    channel_layers: int = 1  # self-attention per channel
    cross_layers: int = 3  # self- and cross-attention between channels
    dropout: float = 0.0  # plenty of data for a small model; dropout only slows it
    context_frames: int = 250  # attention window (5 s at 50 Hz)
    va_window: int = 10  # VA encoder: frames of history per frame
    n_mels: int = 40  # audio encoder
    frame_hz: int = 50
    sample_rate: int = 16000

    @classmethod
    def from_dict(cls, d: dict) -> "VAPModelConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown VAP model config keys: {sorted(unknown)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


MASKED = -1e9  # additive bias of frames outside the window (finite: no NaN in softmax)


def alibi_slopes(heads: int) -> torch.Tensor:
    return torch.tensor([2.0 ** (-8.0 * (i + 1) / heads) for i in range(heads)])


def window_bias(n: int, slopes: torch.Tensor, window: int) -> torch.Tensor:
    """(H, n, n) additive attention bias: -slope * distance inside the causal
    window of `window` frames (the query frame included), MASKED elsewhere."""
    i = torch.arange(n, device=slopes.device)
    dist = (i[:, None] - i[None, :]).float()
    inside = (dist >= 0) & (dist < window)
    bias = -slopes[:, None, None] * dist
    return bias.masked_fill(~inside, MASKED)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads, self.dh = heads, dim // heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))

    def _split(self, x):  # (B, T, D) -> (B, H, T, dh)
        return x.view(x.shape[0], x.shape[1], self.heads, self.dh).transpose(1, 2)

    def forward(self, xq, xkv, bias):
        # plain matmul-softmax: with a finite mask it is faster on CPU than SDPA's
        # masked path, and it is the same arithmetic as `step`
        q = self._split(self.q(xq) * self.dh ** -0.5)
        k, v = self._split(self.k(xkv)), self._split(self.v(xkv))
        s = q @ k.transpose(-1, -2)
        s += bias  # in place: the matmul's backward does not need s
        return self.o((torch.softmax(s, -1) @ v).transpose(1, 2).reshape(xq.shape))

    def kv(self, xkv):  # (B, 1, D) -> k, v (B, H, 1, dh)
        return self._split(self.k(xkv)), self._split(self.v(xkv))

    def step(self, xq, k_new, v_new, k_cache, v_cache, bias):
        """One query frame against cached frames (bias (B, H, 1, C)) and itself (distance 0)."""
        q = self._split(self.q(xq))
        scale = self.dh ** -0.5
        s_cache = (q @ k_cache.transpose(-1, -2)) * scale + bias
        s_self = (q * k_new).sum(-1, keepdim=True) * scale
        a = torch.softmax(torch.cat([s_cache, s_self], -1), -1)
        c = k_cache.shape[-2]
        out = a[..., :c] @ v_cache + a[..., c:] * v_new
        return self.o(out.transpose(1, 2).reshape(xq.shape))


class Block(nn.Module):
    """Pre-LN block: self-attention, (cross-attention to the other channel), feed-forward."""

    def __init__(self, cfg: VAPModelConfig, cross: bool):
        super().__init__()
        d = cfg.dim
        self.ln_sa, self.sa = nn.LayerNorm(d), Attention(d, cfg.heads)
        self.cross = cross
        if cross:
            self.ln_q, self.ln_kv, self.ca = nn.LayerNorm(d), nn.LayerNorm(d), Attention(d, cfg.heads)
        self.ln_ff = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, cfg.ff), nn.GELU(), nn.Dropout(cfg.dropout),
                                nn.Linear(cfg.ff, d))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, bias, past=None):
        """x: (B, 2, n, D), both channels, new frames; past: (layer input,
        post-self-attention state) of the frames before them (each (B, 2, p, D)),
        or None; bias (H, n, p + n). Returns the output for the new frames and
        (input, state) of past + new frames, which `forward_long` carries on."""
        b, _, n, d = x.shape
        p_in, p_mid = past if past is not None else (x[:, :, :0], x[:, :, :0])
        full_in = torch.cat([p_in, x], 2)
        hk = self.ln_sa(full_in.reshape(b * 2, -1, d))
        flat = x.reshape(b * 2, n, d) + self.drop(self.sa(hk[:, -n:], hk, bias))
        full_mid = torch.cat([p_mid, flat.view(b, 2, n, d)], 2)
        if self.cross:
            other = full_mid.flip(1).reshape(b * 2, -1, d)
            flat = flat + self.drop(self.ca(self.ln_q(flat), self.ln_kv(other), bias))
        flat = flat + self.drop(self.ff(self.ln_ff(flat)))
        return flat.view(b, 2, n, d), (full_in, full_mid)

    def n_attention(self) -> int:
        return 2 if self.cross else 1

    def step(self, x, caches, bias):
        """x: (B, 2, 1, D); caches: list of (k, v) each (B, 2, H, C, dh), indexed by the
        channel whose queries read them (for cross-attention: keys of the other
        channel). Returns x and the new (k, v) per attention module."""
        b, _, _, d = x.shape
        flat = x.reshape(b * 2, 1, d)
        new = []

        def attend(att, xq, src, cache):
            k_new, v_new = att.kv(src)
            hk = (k_new.shape[1], k_new.shape[-1])
            kc, vc = cache
            c = kc.shape[-2]
            out = att.step(xq, k_new, v_new, kc.reshape(b * 2, hk[0], c, hk[1]),
                           vc.reshape(b * 2, hk[0], c, hk[1]), bias)
            return out, (k_new, v_new)

        h = self.ln_sa(flat)
        out, kv = attend(self.sa, h, h, caches[0])
        flat = flat + out
        new.append(kv)
        if self.cross:
            other = flat.view(b, 2, 1, d).flip(1).reshape(b * 2, 1, d)
            out, kv = attend(self.ca, self.ln_q(flat), self.ln_kv(other), caches[1])
            flat = flat + out
            new.append(kv)
        flat = flat + self.ff(self.ln_ff(flat))
        return flat.view(b, 2, 1, d), new


class VAPModel(nn.Module):
    def __init__(self, cfg: VAPModelConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or VAPModelConfig()
        if cfg.input == "va":
            self.encoder = VAEncoder(cfg.dim, cfg.va_window)
        elif cfg.input == "audio":
            self.encoder = AudioEncoder(cfg.dim, cfg.sample_rate, cfg.frame_hz, cfg.n_mels)
        else:
            raise ValueError(f"VAP input must be 'va' or 'audio', got {cfg.input!r}")
        self.blocks = nn.ModuleList(
            [Block(cfg, cross=False) for _ in range(cfg.channel_layers)]
            + [Block(cfg, cross=True) for _ in range(cfg.cross_layers)])
        self.combine = nn.Sequential(nn.Linear(2 * cfg.dim, cfg.dim), nn.GELU(), nn.LayerNorm(cfg.dim))
        self.vap_head = nn.Linear(cfg.dim, labels.N_CLASSES)
        self.ln_va = nn.LayerNorm(cfg.dim)
        self.va_head = nn.Linear(cfg.dim, 1)
        self.register_buffer("slopes", alibi_slopes(cfg.heads), persistent=False)
        self.register_buffer("a_now", torch.tensor(labels.A_NOW, dtype=torch.float32), persistent=False)
        self.register_buffer("a_future", torch.tensor(labels.A_FUTURE, dtype=torch.float32),
                             persistent=False)
        self.register_buffer("bc_classes", torch.tensor(labels.BC_CLASSES, dtype=torch.float32),
                             persistent=False)

    @property
    def n_attention(self) -> int:
        return sum(b.n_attention() for b in self.blocks)

    def _heads(self, x):
        """x (B, 2, N, D) -> logits (B, N, 256), va_logits (B, N, 2)."""
        z = self.combine(torch.cat([x[:, 0], x[:, 1]], -1))
        va = self.va_head(self.ln_va(x)).squeeze(-1).transpose(1, 2)
        return self.vap_head(z), va

    def forward(self, x: torch.Tensor, context_frames: int | None = None) -> dict:
        """Full sequence. x: VA (B, N, 2) or audio (B, 2, samples)."""
        h = self.encoder(self.encoder.windows(x))  # (B, 2, N, D)
        bias = window_bias(h.shape[2], self.slopes, context_frames or self.cfg.context_frames)
        bias = bias.to(h.device, h.dtype)
        for blk in self.blocks:
            h = blk(h, bias)[0]
        logits, va = self._heads(h)
        return {"logits": logits, "va_logits": va}

    @torch.no_grad()
    def forward_long(self, x: torch.Tensor, block: int = 250) -> dict:
        """Full-sequence output for inputs of any length, block by block.

        Exactly `forward`: each layer keeps, from the previous blocks, its input
        (self-attention keys) and its post-self-attention state (cross-attention
        keys) of the last context_frames - 1 frames, like the streaming cache."""
        h_all = self.encoder(self.encoder.windows(x))  # (B, 2, N, D)
        n, keep = h_all.shape[2], self.cfg.context_frames - 1
        past: list = [None] * len(self.blocks)
        logits, vas = [], []
        for a in range(0, n, block):
            h = h_all[:, :, a: a + block]
            p = min(a, keep)
            bias = window_bias(p + h.shape[2], self.slopes, self.cfg.context_frames)[:, p:]
            bias = bias.to(h.device, h.dtype)
            for i, blk in enumerate(self.blocks):
                h, full = blk(h, bias, past[i])
                past[i] = tuple(f[:, :, -keep:] if keep else f[:, :, :0] for f in full)
            lg, va = self._heads(h)
            logits.append(lg)
            vas.append(va)
        return {"logits": torch.cat(logits, 1), "va_logits": torch.cat(vas, 1)}

    def probabilities(self, logits: torch.Tensor) -> dict:
        """M1 p_now / p_future and P(backchannel) per speaker from class logits (..., 256)."""
        p = torch.softmax(logits, -1)
        out = {}
        for name, a in (("p_now", self.a_now), ("p_future", self.a_future)):
            num = p @ a
            out[name] = num / num.sum(-1, keepdim=True).clamp_min(1e-12)
        out["p_bc"] = p @ self.bc_classes
        return out

    def cache_shape(self, batch: int, cache_frames: int) -> tuple[int, ...]:
        """(n_attention, 2 [k, v], batch, 2 [channel], heads, cache_frames, head_dim)."""
        c = self.cfg
        return (self.n_attention, 2, batch, 2, c.heads, cache_frames, c.dim // c.heads)

    def step(self, window: torch.Tensor, cache: torch.Tensor, age: torch.Tensor, valid: torch.Tensor):
        """One frame for a batch of streams.

        window: (B, 2, W) raw input ending at this frame (encoder.window units).
        cache: see cache_shape; age: (B, C) frames between this frame and each
        cached one; valid: (B, C) 1 where the slot holds a frame, 0 where empty.
        Returns p_now, p_future, p_bc, p_va (each (B, 2)) and the new keys/values
        (n_attention, 2, B, 2, H, 1, dh) of this frame.
        """
        h = self.encoder(window).unsqueeze(2)  # (B, 2, 1, D)
        b = h.shape[0]
        bias = -self.slopes[None, :, None] * age[:, None, :] + (1.0 - valid[:, None, :]) * MASKED
        bias = bias[:, None].expand(b, 2, *bias.shape[1:]).reshape(b * 2, bias.shape[1], 1, -1)
        news, i = [], 0
        for blk in self.blocks:
            n = blk.n_attention()
            caches = [(cache[i + j, 0], cache[i + j, 1]) for j in range(n)]
            h, new = blk.step(h, caches, bias)
            for k_new, v_new in new:
                shape = (b, 2) + tuple(k_new.shape[1:])
                news.append(torch.stack([k_new.reshape(shape), v_new.reshape(shape)]))
            i += n
        logits, va = self._heads(h)
        probs = self.probabilities(logits[:, 0])
        return (probs["p_now"], probs["p_future"], probs["p_bc"], torch.sigmoid(va[:, 0]),
                torch.stack(news))
