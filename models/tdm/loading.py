"""Loading a causal LM for TDM decoding or training, with the TDM tokens added.

A model directory made by `duplex train tdm` already holds the tokens (and
a `duplex_tdm.json` saying how it was trained); any other causal LM gets
them added here, which grows its embeddings (new rows start at the mean of
the old ones, so an untuned model still runs, mechanically).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from duplex.models import hub
from duplex.models.llm_hf import pick_device, pick_dtype, resolve_causal_lm

from duplex.config import LLMConfig
from duplex.errors import ModelUnavailable
from duplex.tdm.format import SPECIAL_TOKENS

log = logging.getLogger(__name__)

TDM_META = "duplex_tdm.json"  # written next to a fine-tuned model
FORMAT_VERSION = "duplex-tdm/1"


def add_tdm_tokens(tokenizer, model=None) -> int:
    """Add the TDM markers as special tokens; resize `model`'s embeddings if needed.

    Returns how many tokens were new to the tokenizer.
    """
    vocab = tokenizer.get_vocab()
    missing = [t for t in SPECIAL_TOKENS if t not in vocab]
    added = tokenizer.add_special_tokens({"additional_special_tokens": missing},
                                         replace_extra_special_tokens=False) if missing else 0
    if model is not None:
        rows = model.get_input_embeddings().weight.shape[0]
        if len(tokenizer) > rows:
            model.resize_token_embeddings(len(tokenizer), mean_resizing=True)
    return added


def model_path(name: str) -> Path:
    """A model name (Hub id, local dir, or "tiny-random") as a local directory."""
    return resolve_causal_lm("llm", name)


def read_meta(path: str | Path) -> dict:
    """The `duplex_tdm.json` of a fine-tuned model directory ({} when absent)."""
    meta = Path(path) / TDM_META
    return json.loads(meta.read_text()) if meta.is_file() else {}


def check_architecture(config) -> None:
    """The engine keeps one full-attention KV cache per session; refuse what it cannot serve."""
    text = config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config
    kinds = set(getattr(text, "layer_types", None) or ["full_attention"])
    if kinds != {"full_attention"} or getattr(text, "use_sliding_window", False):
        raise ValueError(
            f"the TDM engine needs a decoder with full attention in every layer; this model has "
            f"{sorted(kinds)} layers (sliding-window / linear-attention models are not supported)")


def load_model(cfg: LLMConfig, *, for_training: bool = False):
    """(model, tokenizer, meta) for `cfg.model` on `cfg.device` in `cfg.dtype`, with the
    TDM tokens added (duplex mode or training)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = model_path(cfg.model)
    device = pick_device(cfg.device)
    dtype = pick_dtype(cfg.dtype, device)
    if device.startswith("cuda") and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        dtype = torch.float16  # pre-Ampere GPUs
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        if (path / "adapter_config.json").is_file():  # a LoRA adapter directory
            from peft import AutoPeftModelForCausalLM

            model = AutoPeftModelForCausalLM.from_pretrained(path, dtype=dtype).merge_and_unload()
        else:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except (OSError, ValueError, KeyError) as exc:
        raise hub.unavailable("llm", cfg.model, f"transformers cannot load {path} ({exc})") from exc
    check_architecture(model.config)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.pad_token_id is None:
        raise ModelUnavailable("llm", cfg.model, "its tokenizer has neither a pad nor an eos token")
    # turn mode serves a plain chat model as it is; duplex mode and training need the markers
    added = add_tdm_tokens(tokenizer, model) if cfg.mode == "duplex" or for_training else 0
    meta = read_meta(path)
    if added and cfg.mode == "duplex" and not for_training:
        log.warning("llm %s has no TDM fine-tuning (tokens added now, untrained): it will babble "
                    "in duplex mode; fine-tune it with `duplex train tdm`", cfg.model)
    if meta and cfg.mode == "turn":
        log.info("llm %s is a TDM model; set llm.mode=duplex to let it decide when to speak",
                 cfg.model)
    trained_k = meta.get("slice_tokens")
    if trained_k and trained_k != cfg.slice_tokens and cfg.mode == "duplex":
        log.warning("llm %s was trained with K=%s tokens per slice, decoding with K=%s",
                    cfg.model, meta["slice_tokens"], cfg.slice_tokens)
    model = model.to(device)
    model.train(for_training)
    return model, tokenizer, meta
