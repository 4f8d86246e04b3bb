"""Training data for VAP: voice activity of Switchboard dialogues (word
timings, REFERENCE §1) and random chunks with their projection labels.

A chunk is `frames` frames of model input plus the 2 s horizon after it
that the labels look into; inputs may be corrupted (augment.py), labels and
the voice-activity target never are.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from duplex.data.switchboard import load_dialogues
from duplex.vap import labels

from .augment import augment_va


def switchboard_va(split: str, path: str | None = None, limit: int | None = None,
                   frame_hz: int = 50) -> list[np.ndarray]:
    """Voice activity (N, 2) uint8 of every dialogue of a split."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be train, val or test, got {split!r}")
    out = [d.voice_activity(frame_hz).astype(np.uint8)
           for d in load_dialogues(path, split=split, limit=limit)]
    if not out:
        raise ValueError(f"no {split} dialogues found in the Switchboard file {path or ''}")
    return out


@dataclass
class Batch:
    x: torch.Tensor  # model input: VA (B, N, 2) or audio (B, 2, N * hop)
    target: torch.Tensor  # (B, N) class labels
    va: torch.Tensor  # (B, N, 2) clean voice activity of the input frames


class ChunkSampler:
    """Random chunks, dialogues drawn in proportion to their length.

    audio: optional per-dialogue (2, samples) arrays aligned with `vas`
    (hop samples per frame); when given, the model input is audio.
    """

    def __init__(self, vas: list[np.ndarray], frames: int, seed: int = 0, augment: bool = True,
                 swap: bool = True, audio: list[np.ndarray] | None = None, hop: int = 320):
        self.horizon = labels.horizon_frames()
        need = frames + self.horizon
        keep = [i for i, v in enumerate(vas) if len(v) >= need]
        if not keep:
            raise ValueError(f"no dialogue is longer than {need} frames ({need / 50:.1f} s)")
        self.vas = [vas[i] for i in keep]
        self.audio = [audio[i] for i in keep] if audio is not None else None
        self.frames, self.hop = frames, hop
        lens = np.array([len(v) - need + 1 for v in self.vas], dtype=float)
        self.weights = lens / lens.sum()
        self.rng = np.random.default_rng(seed)
        self.augment, self.swap = augment, swap

    def sample(self, batch_size: int) -> Batch:
        xs, ys, vs = [], [], []
        for _ in range(batch_size):
            i = int(self.rng.choice(len(self.vas), p=self.weights))
            start = int(self.rng.integers(0, len(self.vas[i]) - self.frames - self.horizon + 1))
            chunk = self.vas[i][start: start + self.frames + self.horizon].astype(np.float32)
            flip = self.swap and self.rng.random() < 0.5
            if flip:
                chunk = chunk[:, ::-1]
            ys.append(labels.projection_labels(chunk))
            vs.append(chunk[: self.frames])
            if self.audio is not None:
                a = self.audio[i][:, start * self.hop: (start + self.frames) * self.hop]
                xs.append(a[::-1] if flip else a)
            else:
                x = chunk[: self.frames]
                xs.append(augment_va(x, self.rng) if self.augment else x)
        return Batch(torch.tensor(np.stack(xs), dtype=torch.float32),
                     torch.tensor(np.stack(ys), dtype=torch.long),
                     torch.tensor(np.stack(vs), dtype=torch.float32))
