"""Choosing a token from one session's logits: greedy, or temperature + top-p
with the session's own random generator (so batching never changes a
session's draws)."""
from __future__ import annotations

from typing import Callable

import torch


def make_chooser(temperature: float, top_p: float, banned: torch.Tensor,
                 seed: int | None) -> Callable[[torch.Tensor], int]:
    """A function float32 CPU logits [vocab] -> token id; `banned` ids are never chosen."""
    if temperature < 0 or not 0.0 < top_p <= 1.0:
        raise ValueError(f"llm sampling needs temperature >= 0 and 0 < top_p <= 1, got "
                         f"temperature={temperature}, top_p={top_p}")
    gen = torch.Generator()
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(seed)

    def choose(logits: torch.Tensor) -> int:
        logits = logits.clone()
        if banned.numel():
            logits[banned] = float("-inf")
        if temperature == 0:
            return int(logits.argmax())
        probs = torch.softmax(logits / temperature, dim=-1)
        if top_p < 1.0:
            sorted_p, order = probs.sort(descending=True)
            outside = sorted_p.cumsum(-1) - sorted_p > top_p  # keep the smallest set reaching top_p
            sorted_p[outside] = 0.0
            probs = torch.zeros_like(probs).scatter_(0, order, sorted_p)
        return int(torch.multinomial(probs, 1, generator=gen))

    return choose
