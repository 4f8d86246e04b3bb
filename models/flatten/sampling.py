"""Sampling restricted to the ids valid at each position of a chunk.

Text slots may hold text ids (the tokenizer's own special tokens excluded),
`<pad>` or `<epad>`; a code position of codebook q only codebook q's ids.
Everything else is masked out before sampling, so the engine can never write
an id that breaks the layout.
"""
from __future__ import annotations

import torch

from duplex.flatten import ChunkLayout, FlatVocab, Kind


class PositionSampler:
    def __init__(self, vocab: FlatVocab, layout: ChunkLayout, excluded_text: list[int],
                 device: str | torch.device):
        self.vocab, self.layout = vocab, layout
        text = torch.ones(vocab.text_size, dtype=torch.bool)
        excluded = [i for i in excluded_text if 0 <= i < vocab.text_size]
        text[excluded] = False
        self.text_ids = torch.cat([torch.nonzero(text).flatten(),
                                   torch.tensor([vocab.pad, vocab.epad])]).to(device)
        self.ranges = [vocab.code_range(q) for q in range(vocab.num_codebooks)]

    def valid(self, kind: Kind, index: int) -> tuple[torch.Tensor | None, tuple[int, int] | None]:
        """(explicit id list, or [start, stop) range) valid at a generated position."""
        if kind in (Kind.AGENT_TEXT, Kind.USER_TEXT):
            return self.text_ids, None
        if kind == Kind.AGENT_CODE:
            return None, self.ranges[index % self.layout.num_codebooks]
        raise ValueError(f"position kind {kind.name} is an input, not generated")

    def choose(self, logits: torch.Tensor, kind: Kind, index: int, temperature: float = 0.0,
               top_k: int = 0, generator: torch.Generator | None = None) -> int:
        """One id for this position from its logits [vocab]; greedy when temperature <= 0."""
        ids, span = self.valid(kind, index)
        sub = logits[ids] if ids is not None else logits[span[0]:span[1]]
        sub = sub.float()
        if temperature <= 0:
            pick = int(torch.argmax(sub))
        else:
            sub = sub / temperature
            if 0 < top_k < sub.numel():
                kth = torch.topk(sub, top_k).values[-1]
                sub = sub.masked_fill(sub < kth, float("-inf"))
            probs = torch.softmax(sub, dim=-1)
            pick = int(torch.multinomial(probs, 1, generator=generator))
        return int(ids[pick]) if ids is not None else span[0] + pick
