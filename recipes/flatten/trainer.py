"""The loss of the flattened format and the Trainer that uses it.

loss = weighted mean CE over the text group + weighted mean CE over the audio
group (see duplex.flatten.sequence). Logits are computed only at positions
that predict a weighted token (about half of a chunk), which halves the
memory of the largest tensor in the step.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import Trainer

from duplex.flatten import LossGroup


def flat_loss(model, input_ids: torch.Tensor, attention_mask: torch.Tensor,
              weights: torch.Tensor, groups: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """(loss, {"text": ..., "audio": ...}) of a batch; weights[i] weighs predicting input_ids[i]."""
    targets, w, g = input_ids[:, 1:], weights[:, 1:], groups[:, 1:]
    keep = torch.nonzero((w > 0).any(dim=0)).flatten()
    if keep.numel() == 0:
        keep = torch.zeros(1, dtype=torch.long, device=input_ids.device)
    logits = model(input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=keep).logits
    ce = F.cross_entropy(logits.float().flatten(0, 1), targets[:, keep].flatten(),
                         reduction="none").view(logits.shape[:2])
    wk, gk = w[:, keep], g[:, keep]
    loss = ce.sum() * 0.0  # stays connected to the graph when a batch has no target
    parts = {}
    for name, group in (("text", LossGroup.TEXT), ("audio", LossGroup.AUDIO)):
        m = wk * (gk == int(group))
        if m.sum() > 0:
            part = (ce * m).sum() / m.sum()
            loss = loss + part
            parts[name] = float(part.detach())
    return loss, parts


class FlatTrainer(Trainer):
    """HF Trainer with the flattened loss; logs the text and audio parts and counts tokens."""

    loss_is_scaled_for_ga = False  # our loss is a per-batch mean: let the Trainer divide by GA

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.tokens_seen = 0
        self._parts: dict[str, list[float]] = {}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, parts = flat_loss(model, inputs["input_ids"], inputs["attention_mask"],
                                inputs["weights"], inputs["groups"])
        if model.training:
            self.tokens_seen += int(inputs["attention_mask"].sum())
            for k, v in parts.items():
                self._parts.setdefault(k, []).append(v)
        return (loss, None) if return_outputs else loss

    def log(self, logs: dict, *args, **kwargs) -> None:
        if "loss" in logs:
            for k, v in self._parts.items():
                if v:
                    logs[f"loss_{k}"] = round(sum(v) / len(v), 4)
            self._parts = {}
        super().log(logs, *args, **kwargs)
