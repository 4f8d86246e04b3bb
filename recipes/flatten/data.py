"""Training examples for the flatten recipe: clips -> codes (cached) -> sequences.

Each clip's two channels are padded to whole chunks and encoded with the
codec once; the codes are cached as .npz keyed by the file, the codec and
the number of codebooks, so later stages and re-runs skip the codec.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from duplex.recipes.data.moshi_format import DialogueClip
from tqdm import tqdm

from duplex.flatten import (
    ChunkLayout,
    FlatSequence,
    FlatVocab,
    LossWeights,
    Word,
    flatten_duplex,
    half_duplex,
    modality_alignment,
)

from .config import TrainConfig


@dataclass
class EncodedClip:
    name: str
    agent_codes: np.ndarray  # [Q, F], F a whole number of chunks
    user_codes: np.ndarray
    agent_words: list[Word]
    user_words: list[Word]
    duration: float  # seconds of real audio (the rest of the last chunk is padding)


def _cache_key(clip: DialogueClip, codec, chunk_ms: int) -> str:
    st = clip.path.stat()
    text = f"{clip.path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{codec.name}|" \
           f"{codec.num_codebooks}|{chunk_ms}"
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def encode_clip(clip: DialogueClip, codec, chunk_ms: int) -> EncodedClip:
    agent, user, rate = clip.load_audio(codec.sample_rate)
    chunk = int(round(rate * chunk_ms / 1000))
    n = max(len(agent), len(user), 1)
    n = -(-n // chunk) * chunk

    def pad(a):
        return np.concatenate([a, np.zeros(n - len(a), np.float32)])

    return EncodedClip(clip.path.stem, codec.encode(pad(agent)), codec.encode(pad(user)),
                       clip.words(agent=True), clip.words(agent=False), len(agent) / rate)


def encode_clips(clips: Sequence[DialogueClip], codec, chunk_ms: int,
                 cache_dir: str | Path | None = None) -> list[EncodedClip]:
    out = []
    cache = Path(cache_dir) if cache_dir else None
    if cache:
        cache.mkdir(parents=True, exist_ok=True)
    for clip in tqdm(clips, desc="encoding clips", unit="clip"):
        path = None
        if cache:
            path = cache / f"{clip.path.stem}-{_cache_key(clip, codec, chunk_ms)}.npz"
        if path is not None and path.exists():
            z = np.load(path)
            out.append(EncodedClip(clip.path.stem, z["agent"], z["user"], clip.words(True),
                                   clip.words(False), float(z["duration"])))
            continue
        enc = encode_clip(clip, codec, chunk_ms)
        if path is not None:  # write then rename: several ranks may encode at once
            tmp = path.with_name(f".{path.stem}-{os.getpid()}.npz")
            np.savez(tmp, agent=enc.agent_codes, user=enc.user_codes, duration=enc.duration)
            os.replace(tmp, path)
        out.append(enc)
    return out


def loss_weights_of(cfg: TrainConfig) -> LossWeights:
    return LossWeights(cfg.text_weight, cfg.text_pad_weight, cfg.semantic_weight,
                       cfg.acoustic_weight, cfg.user_text_weight)


def build_examples(clips: Sequence[EncodedClip], cfg: TrainConfig, vocab: FlatVocab,
                   layout: ChunkLayout, tokenize) -> list[FlatSequence]:
    """The training sequences of a stage."""
    weights = loss_weights_of(cfg)
    out: list[FlatSequence] = []
    for c in clips:
        roles = [(c.agent_codes, c.user_codes, c.agent_words, c.user_words)]
        if cfg.swap_roles:
            roles.append((c.user_codes, c.agent_codes, c.user_words, c.agent_words))
        for a_codes, u_codes, a_words, u_words in roles:
            if cfg.duplex:
                seq = flatten_duplex(a_codes, u_codes, a_words, u_words, vocab=vocab,
                                     layout=layout, tokenize=tokenize, weights=weights,
                                     valid_s=c.duration)
                out += seq.windows(cfg.max_chunks)
            elif cfg.stage == "half":
                out += half_duplex(a_codes, u_codes, a_words, u_words, vocab=vocab,
                                   frame_rate=layout.frame_rate, tokenize=tokenize,
                                   weights=weights, max_tokens=cfg.max_tokens)
            else:
                out += [s.slice(0, cfg.max_tokens) for s in modality_alignment(
                    a_codes, u_codes, a_words, u_words, vocab=vocab, frame_rate=layout.frame_rate,
                    tokenize=tokenize, weights=weights)]
    out = [s for s in out if s.weights[1:].sum() > 0]  # nothing to learn from the rest
    if not out:
        raise ValueError("the data gave no training example with a target (no agent speech?)")
    return out


class FlatDataset(torch.utils.data.Dataset):
    def __init__(self, sequences: Sequence[FlatSequence]):
        self.sequences = list(sequences)

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, i: int) -> dict:
        s = self.sequences[i]
        return {"input_ids": s.tokens, "weights": s.weights, "groups": s.groups}


class Collator:
    """Pads a batch to its longest sequence; padding has weight 0 and no attention."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, batch: list[dict]) -> dict:
        n = max(len(b["input_ids"]) for b in batch)
        ids = torch.full((len(batch), n), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), n), dtype=torch.long)
        weights = torch.zeros((len(batch), n), dtype=torch.float32)
        groups = torch.zeros((len(batch), n), dtype=torch.long)
        for i, b in enumerate(batch):
            k = len(b["input_ids"])
            ids[i, :k] = torch.as_tensor(b["input_ids"])
            mask[i, :k] = 1
            weights[i, :k] = torch.as_tensor(b["weights"])
            groups[i, :k] = torch.as_tensor(b["groups"], dtype=torch.long)
        return {"input_ids": ids, "attention_mask": mask, "weights": weights, "groups": groups}
