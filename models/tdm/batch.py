"""One batched decoding pass over many sessions, each with its own KV cache.

Every session keeps its cache as plain per-layer (key, value) tensors
[1, kv_heads, length, head_dim]. For one tick the rows are gathered into a
single batch cache, left-padded to the longest; the new tokens of every row
(its user slice, right-padded) are prefilled in one forward pass, then all
rows decode in lock-step, one forward per token, until each has hit a stop
token or its token budget. Padding never carries information: the attention
mask hides it and `position_ids` give every row its true positions, so a
row's logits are those of the same session decoded alone (up to float
rounding). Afterwards each row's cache is scattered back without the pads.

The last token a row samples is not fed (nothing needs its logits yet); it
is fed at the start of that session's next pass, with the user slice.
Only full-attention decoder models are supported (checked at load).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from transformers import DynamicCache

KV = list[tuple[torch.Tensor, torch.Tensor]]


@dataclass
class Row:
    """One session's share of a batched pass (inputs, then outputs)."""

    kv: KV | None  # the session's cache, None when empty
    length: int  # tokens in kv
    feed: list[int]  # tokens to prefill before decoding (>= 1)
    max_new: int  # most tokens to produce (>= 1)
    stops: frozenset[int]  # tokens that end the row early (kept in the output)
    choose: Callable[[torch.Tensor], int]  # float32 CPU logits [vocab] -> token (sampling)
    forced: Sequence[int] | None = None  # teacher forcing: emit these instead of sampling
    on_token: Callable[[int], None] | None = None
    keep_scores: bool = False
    # outputs
    tokens: list[int] = field(default_factory=list)
    scores: list[torch.Tensor] = field(default_factory=list)


def _batch_cache(rows: Sequence[Row], width: int) -> DynamicCache | None:
    """The rows' caches stacked into one, each left-padded to `width` tokens."""
    if width == 0:
        return None
    template = next(r.kv for r in rows if r.kv is not None)
    layers = []
    for li, (k0, v0) in enumerate(template):
        keys, values = [], []
        for r in rows:
            if r.kv is None:
                keys.append(k0.new_zeros((1, k0.shape[1], width, k0.shape[3])))
                values.append(v0.new_zeros((1, v0.shape[1], width, v0.shape[3])))
            else:
                k, v = r.kv[li]
                pad = width - r.length
                keys.append(torch.nn.functional.pad(k, (0, 0, pad, 0)) if pad else k)
                values.append(torch.nn.functional.pad(v, (0, 0, pad, 0)) if pad else v)
        layers.append((torch.cat(keys), torch.cat(values)))
    return DynamicCache(ddp_cache_data=layers)


def _pick(rows: Sequence[Row], logits: torch.Tensor) -> None:
    """Each row's next token from its logits [rows, vocab] (one device->host copy for all)."""
    logits = logits.float().cpu()
    for row, row_logits in zip(rows, logits):
        if row.keep_scores:
            row.scores.append(row_logits)
        if row.forced is not None:
            token = int(row.forced[len(row.tokens)])
        else:
            token = row.choose(row_logits)
        row.tokens.append(token)
        if row.on_token is not None:
            row.on_token(token)


def _done(row: Row) -> bool:
    return bool(row.tokens) and (row.tokens[-1] in row.stops or len(row.tokens) >= row.max_new)


@torch.inference_mode()
def decode_batch(model, rows: Sequence[Row], pad_id: int) -> None:
    """Prefill every row's `feed` and decode; fills `tokens`, `scores`, `kv`, `length`."""
    if not rows:
        return
    for r in rows:
        if not r.feed or r.max_new < 1:
            raise ValueError("every row needs at least one token to feed and one to produce")
        if r.forced is not None:
            if not r.forced:
                raise ValueError("forced tokens must not be empty")
            r.max_new = len(r.forced)
    device = model.device
    n = len(rows)
    width = max(r.length for r in rows)
    longest = max(len(r.feed) for r in rows)
    cache = _batch_cache(rows, width)

    ids = torch.full((n, longest), pad_id, dtype=torch.long)
    pos = torch.zeros((n, longest), dtype=torch.long)
    valid = torch.zeros((n, width + longest), dtype=torch.bool)  # which cache columns are real
    for b, r in enumerate(rows):
        ids[b, : len(r.feed)] = torch.tensor(r.feed)
        pos[b] = torch.arange(r.length, r.length + longest)
        valid[b, width - r.length : width + len(r.feed)] = True
    next_pos = torch.tensor([r.length + len(r.feed) for r in rows])

    out = model(input_ids=ids.to(device), attention_mask=valid.long().to(device),
                position_ids=pos.to(device), past_key_values=cache, use_cache=True)
    cache = out.past_key_values
    last = torch.tensor([len(r.feed) - 1 for r in rows], device=out.logits.device)
    _pick(rows, out.logits[torch.arange(n, device=last.device), last])

    while True:
        active = [b for b, r in enumerate(rows) if not _done(r)]
        if not active:
            break
        step_ids = torch.full((n, 1), pad_id, dtype=torch.long)
        column = torch.zeros((n, 1), dtype=torch.bool)
        for b in active:
            step_ids[b, 0] = rows[b].tokens[-1]
            column[b, 0] = True
        valid = torch.cat([valid, column], dim=1)
        out = model(input_ids=step_ids.to(device), attention_mask=valid.long().to(device),
                    position_ids=next_pos[:, None].to(device), past_key_values=cache,
                    use_cache=True)
        cache = out.past_key_values
        next_pos = next_pos + column[:, 0].long()
        _pick([rows[b] for b in active], out.logits[active, -1])

    # scatter: each row keeps the columns that are real, in order
    layers = [(layer.keys, layer.values) for layer in cache.layers]
    for b, r in enumerate(rows):
        keep = valid[b].nonzero().squeeze(1).to(device)
        r.kv = [(k[b : b + 1].index_select(2, keep), v[b : b + 1].index_select(2, keep))
                for k, v in layers]
        r.length = int(keep.numel())
