"""`duplex train flatten`: fine-tune a causal LM into a flattened speech-text duplex model.

    duplex train flatten --config full --data data/train.jsonl --model Qwen/Qwen2.5-0.5B \\
        --output runs/full [--max-steps N] [--resume] [--set key=value ...]

Stages (OmniFlatten's curriculum; each starts from the previous one's
`OUTPUT/final`): `alignment` (ASR + TTS) -> `half` (half-duplex turns) ->
`full_user_text` -> `full` (what the streaming engine serves); `full_no_text`
drops the text slots. Configs for each are in recipes/flatten/configs/.

The data (moshi-finetune layout, see duplex.recipes.data) is encoded with
the codec once and cached. Training uses the Hugging Face Trainer: LoRA (peft,
with the new token rows trainable) or full fine-tuning, bf16 on GPUs that
have it, gradient checkpointing, checkpoints every `save_steps` (`--resume`
continues from the last one). The result, `OUTPUT/final`, is a plain
transformers model directory (LoRA merged) with its tokenizer and
flatten.json, ready for `--set flatten.model=OUTPUT/final`. Throughput
(tokens/s, audio hours per device hour) goes to OUTPUT/throughput.json.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import torch

from duplex.errors import ModelUnavailable
from duplex.flatten import ChunkLayout

from .config import TrainConfig, load_train_config

log = logging.getLogger("duplex.recipes.flatten")


def parse_args(argv: list[str]) -> tuple[TrainConfig, bool]:
    p = argparse.ArgumentParser(prog="duplex train flatten", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", help="a JSON/TOML stage config, or the name of a shipped one "
                                    "(alignment, half, full_user_text, full, tiny)")
    p.add_argument("--data", help="the .jsonl manifest of the dialogues")
    p.add_argument("--model", help="base LM (Hub id or directory) or an earlier stage's output")
    p.add_argument("--codec", help="codec Hub id or directory (default kyutai/mimi)")
    p.add_argument("--output", help="run directory (checkpoints, final/)")
    p.add_argument("--stage", help="alignment | half | full | full_user_text | full_no_text")
    p.add_argument("--max-steps", type=int, dest="max_steps")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config key (repeatable)")
    a = p.parse_args(argv)
    try:
        cfg = load_train_config(a.config, a.set, data=a.data, model=a.model, codec=a.codec,
                                output=a.output, stage=a.stage, max_steps=a.max_steps)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        p.error(str(exc))
    if not cfg.data:
        p.error("no data: pass --data PATH.jsonl (or set data in the config)")
    return cfg, a.resume


def use_bf16(cfg: TrainConfig) -> bool:
    gpu_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if cfg.bf16 == "true" and not gpu_bf16:
        raise ValueError("bf16=true needs a GPU with bfloat16 support")
    return cfg.bf16 == "true" or (cfg.bf16 == "auto" and gpu_bf16)


def training_arguments(cfg: TrainConfig, bf16: bool):
    import dataclasses

    from transformers import TrainingArguments

    # transformers 5 renamed gradient checkpointing to activation checkpointing
    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    ckpt = "activation_checkpointing" if "activation_checkpointing" in names else \
        "gradient_checkpointing"
    return TrainingArguments(
        **{ckpt: cfg.gradient_checkpointing, f"{ckpt}_kwargs": {"use_reentrant": False}},
        output_dir=cfg.output, per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay, warmup_steps=cfg.warmup_ratio,
        max_steps=cfg.max_steps if cfg.max_steps > 0 else -1, num_train_epochs=cfg.epochs,
        max_grad_norm=cfg.max_grad_norm, bf16=bf16,
        logging_steps=cfg.logging_steps, logging_first_step=True, save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit, seed=cfg.seed, report_to=[],
        remove_unused_columns=False, dataloader_pin_memory=torch.cuda.is_available(),
        use_cpu=not torch.cuda.is_available())


def main(argv: list[str] | None = None) -> int:
    from duplex.models.codec import load_codec, resolve_device
    from duplex.models.flatten.spec import FlattenSpec
    from duplex.models.flatten.text import word_codec
    from duplex.recipes.data.moshi_format import read_manifest
    from transformers.trainer_utils import get_last_checkpoint

    from .backbone import apply_lora, extend_vocab, load_backbone
    from .data import Collator, FlatDataset, build_examples, encode_clips, loss_weights_of
    from .trainer import FlatTrainer

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfg, resume = parse_args(list(argv or []))
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_config.json").write_text(json.dumps(cfg.__dict__, indent=2))

    try:  # everything the user's inputs can get wrong: a message, not a traceback
        clips = read_manifest(cfg.data)
        codec = load_codec(cfg.codec, cfg.num_codebooks, resolve_device(cfg.device))
        layout = ChunkLayout(cfg.stage if cfg.duplex else "full", cfg.chunk_ms, codec.frame_rate,
                             cfg.num_codebooks, cfg.text_slots)
        model, tokenizer, prev = load_backbone(cfg.model)
        vocab = extend_vocab(model, tokenizer, layout, codec.codebook_size, prev)
        tokenize, _ = word_codec(tokenizer)
        encoded = encode_clips(clips, codec, cfg.chunk_ms, cfg.cache_dir or out / "codes")
        examples = build_examples(encoded, cfg, vocab, layout, tokenize)
    except (ValueError, FileNotFoundError, ModelUnavailable) as exc:
        print(f"duplex train flatten: error: {exc}", file=sys.stderr)
        return 2
    del codec  # free its memory before training
    n_tokens = sum(len(e) for e in examples)
    log.info(f"{cfg.stage}: {len(clips)} clips -> {len(examples)} examples, {n_tokens} tokens; "
             f"vocabulary {vocab.size} ({vocab.text_size} text)")

    if cfg.lora:
        model = apply_lora(model, cfg, vocab)
    if cfg.gradient_checkpointing:
        model.config.use_cache = False
    bf16 = use_bf16(cfg)
    trainer = FlatTrainer(model=model, args=training_arguments(cfg, bf16),
                          train_dataset=FlatDataset(examples), data_collator=Collator(vocab.pad))
    last = get_last_checkpoint(str(out)) if resume and out.exists() else None
    if resume and last is None:
        log.info("--resume: no checkpoint yet in %s, starting from scratch", out)
    t0 = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=last)
    seconds = time.perf_counter() - t0
    if not trainer.is_world_process_zero():
        return 0  # under torchrun / accelerate launch, rank 0 saves

    final_model = trainer.model
    if cfg.lora:
        final_model = final_model.merge_and_unload()
    if bf16:
        final_model = final_model.to(torch.bfloat16)
    final_model.config.use_cache = True
    final = out / "final"
    final_model.save_pretrained(final)
    tokenizer.save_pretrained(final)
    FlattenSpec(vocab, layout, cfg.codec, cfg.stage, prev.base_model if prev else cfg.model,
                loss_weights_of(cfg)).save(final)

    # tokens_seen counts this process's batches: one device's share under DDP
    devices = trainer.args.world_size
    audio_s = trainer.tokens_seen * (cfg.chunk_ms / 1000 / layout.length) if cfg.duplex else None
    stats = {
        "stage": cfg.stage, "steps": result.global_step, "train_loss": result.training_loss,
        "seconds": round(seconds, 2), "tokens": trainer.tokens_seen * devices,
        "tokens_per_s": round(trainer.tokens_seen * devices / seconds, 1),
        "audio_hours_per_device_hour": round(audio_s / seconds, 3) if audio_s else None,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "devices": devices, "bf16": bf16, "lora": cfg.lora,
    }
    (out / "throughput.json").write_text(json.dumps(stats, indent=2))
    log.info("model: %s\n%s", final, json.dumps(stats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
