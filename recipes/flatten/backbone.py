"""The backbone LM of the flatten recipe: loading, vocabulary extension, LoRA.

The vocabulary grows by the control tokens and Q x codebook_size codec ids
(`duplex.flatten.FlatVocab`); new rows start from the mean and covariance of
the old embeddings (transformers' resize). With LoRA, the new rows of the
input and output embeddings are trained too (peft trainable tokens), the old
ones stay frozen. A model from an earlier stage (with a flatten.json) keeps
its vocabulary.
"""
from __future__ import annotations

from pathlib import Path

import torch
from duplex.models.flatten.spec import FILENAME, FlattenSpec

from duplex.errors import ModelUnavailable
from duplex.flatten import ChunkLayout, FlatVocab

from .config import TrainConfig

HINT = "download it on a machine with network access and pass its directory with --model /path"


def load_backbone(name: str):
    """(model in float32, tokenizer, spec of an earlier stage or None)."""
    from duplex.models import hub
    from duplex.models.codec import find_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = find_model("llm", name, HINT, ["*.json", "*.safetensors", "*.txt", "*.model",
                                          "*.tiktoken"])
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    except Exception as exc:
        raise ModelUnavailable("llm", name, hub.describe(exc), HINT) from exc
    prev = FlattenSpec.load(path) if (Path(path) / FILENAME).exists() else None
    return model, tokenizer, prev


def extend_vocab(model, tokenizer, layout: ChunkLayout, codebook_size: int,
                 prev: FlattenSpec | None) -> FlatVocab:
    """The model's flattened vocabulary, resizing its embeddings when it is new."""
    if prev is not None:
        v = prev.vocab
        if (v.num_codebooks, v.codebook_size) != (layout.num_codebooks, codebook_size):
            raise ValueError(f"the model was trained with {v.num_codebooks} x {v.codebook_size} "
                             f"codes, this run uses {layout.num_codebooks} x {codebook_size}")
        if prev.layout.frame_rate != layout.frame_rate:
            raise ValueError("the model was trained with a codec of another frame rate")
        return v
    vocab = FlatVocab(text_size=len(tokenizer), num_codebooks=layout.num_codebooks,
                      codebook_size=codebook_size)
    model.resize_token_embeddings(vocab.size, pad_to_multiple_of=64)
    return vocab


def _module_name(model, module) -> str:
    for name, m in model.named_modules():
        if m is module:
            return name.split(".")[-1]
    raise ValueError("embedding module not found in the model")


def apply_lora(model, cfg: TrainConfig, vocab: FlatVocab):
    """LoRA adapters on the backbone plus trainable rows for the new tokens."""
    from peft import LoraConfig, get_peft_model

    new_ids = list(range(vocab.special_base, vocab.size))
    tokens = {_module_name(model, model.get_input_embeddings()): new_ids}
    out_emb = model.get_output_embeddings()
    tied = out_emb is not None and out_emb.weight is model.get_input_embeddings().weight
    if out_emb is not None and not tied:
        tokens[_module_name(model, out_emb)] = new_ids
    targets = cfg.lora_targets if cfg.lora_targets == "all-linear" else [
        t.strip() for t in cfg.lora_targets.split(",") if t.strip()]
    config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                        target_modules=targets, trainable_token_indices=tokens,
                        task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def save_untrained(backbone: str, codec, out_dir: str | Path, stage: str = "full",
                   chunk_ms: int = 160, text_slots: int = 2) -> Path:
    """A flatten model directory straight from a backbone, vocabulary extended, not trained.

    Its outputs mean nothing; its cost per chunk is the trained model's, so
    benchmarks and engine tests can run without a training run."""
    layout = ChunkLayout(stage, chunk_ms, codec.frame_rate, codec.num_codebooks, text_slots)
    model, tokenizer, prev = load_backbone(backbone)
    vocab = extend_vocab(model, tokenizer, layout, codec.codebook_size, prev)
    out = Path(out_dir)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    FlattenSpec(vocab, layout, codec.name, stage, backbone).save(out)
    return out
