"""`duplex train tdm`: fine-tune a chat LLM into a time-sliced duplex model.

    duplex train tdm --model Qwen/Qwen2.5-0.5B-Instruct --data HuggingFaceH4/ultrachat_200k \
        --split train_sft --limit 20000 --output runs/tdm-qwen0.5b

Ordinary chat conversations become duplex dialogues of the six kinds
(`recipes/tdm/data.py`), user slices of 4-6 words, assistant slices of K
tokens, loss on the assistant's tokens only. Training runs on the Hugging
Face Trainer: LoRA (peft; the TDM marker embeddings are trained too) or full
fine-tuning, bf16 on a GPU, checkpoints in OUTPUT/checkpoints that a rerun
resumes from, progress bars. The final model (LoRA merged) is written to
OUTPUT with its tokenizer and `duplex_tdm.json`; the server loads it as is:

    duplex serve --set llm.engine=tdm --set llm.mode=duplex --set llm.model=OUTPUT
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from duplex.tdm.format import SPECIAL_TOKENS
from duplex.tdm.kinds import KINDS

log = logging.getLogger(__name__)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="duplex train tdm", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="Qwen/Qwen2.5-0.5B-Instruct",
                   help="base chat model: Hugging Face id, local directory or tiny-random")
    p.add_argument("--data", default="builtin",
                   help="JSONL of {'messages': [...]} lines, a HF dataset name, or builtin")
    p.add_argument("--split", default="train", help="dataset split (HF datasets)")
    p.add_argument("--messages-field", default="messages")
    p.add_argument("--limit", type=int, default=None, help="use at most this many conversations")
    p.add_argument("--output", required=True, help="output directory (model + checkpoints)")
    p.add_argument("--slice-tokens", type=int, default=10, help="K: assistant tokens per slice")
    p.add_argument("--kinds", default=",".join(KINDS), help=f"dialogue kinds, of {','.join(KINDS)}")
    p.add_argument("--per-conversation", type=int, default=1,
                   help="dialogues made per conversation")
    p.add_argument("--system", default=None, help="system prompt for conversations without one")
    p.add_argument("--max-length", type=int, default=2048,
                   help="tokens per example (longer are cut)")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--max-steps", type=int, default=-1,
                   help="stop after this many steps (overrides epochs)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--lr", type=float, default=None, help="default 2e-4 (LoRA) / 2e-5 (full)")
    p.add_argument("--warmup-ratio", type=float, default=0.03)
    p.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA")
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--lora-alpha", type=int, default=32)
    p.add_argument("--lora-dropout", type=float, default=0.05)
    p.add_argument("--lora-targets", default="all-linear", help="peft target_modules")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--save-steps", type=int, default=200)
    p.add_argument("--save-total-limit", type=int, default=2)
    p.add_argument("--logging-steps", type=int, default=10)
    p.add_argument("--resume", default="auto",
                   help="auto (latest in OUTPUT/checkpoints, if any) | no | a checkpoint path")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if unknown := set(args.kinds) - set(KINDS):
        p.error(f"unknown --kinds {sorted(unknown)} (known: {', '.join(KINDS)})")
    for name in ("slice_tokens", "batch_size", "grad_accum", "max_length", "per_conversation",
                 "logging_steps", "save_steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def _lora(model, tokenizer, args):
    from peft import LoraConfig, get_peft_model

    ids = [tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS]
    tokens = {"embed_tokens": ids}  # the new markers must learn their embeddings...
    if not model.config.get_text_config().tie_word_embeddings:
        tokens["lm_head"] = ids  # ...and, when untied, their output rows
    config = LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                        target_modules=args.lora_targets, trainable_token_indices=tokens,
                        task_type="CAUSAL_LM")
    model = get_peft_model(model, config)
    model.print_trainable_parameters()
    return model


def _resume_point(args, ckpt_dir: Path):
    if args.resume == "no":
        return None
    if args.resume != "auto":
        if not Path(args.resume).is_dir():
            raise SystemExit(f"--resume: no checkpoint directory at {args.resume}")
        return args.resume
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(argv or []))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    import datasets
    import torch
    from duplex.models.llm_hf import pick_device
    from duplex.models.tdm.loading import FORMAT_VERSION, TDM_META, load_model
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from duplex.config import LLMConfig

    from .data import build_examples, load_conversations

    device = pick_device(args.device)
    on_gpu = device.startswith("cuda")
    bf16 = on_gpu and torch.cuda.is_bf16_supported()
    # LoRA: a frozen base in bf16 saves memory; full fine-tuning keeps fp32 master weights
    # (bf16 autocast)
    dtype = "bfloat16" if bf16 and not args.full else "float32"
    model, tokenizer, _ = load_model(LLMConfig(model=args.model, device="cpu", dtype=dtype,
                                               mode="duplex", slice_tokens=args.slice_tokens),
                                     for_training=True)
    convs = load_conversations(args.data, split=args.split, field=args.messages_field,
                               limit=args.limit)
    examples = build_examples(convs, tokenizer, k=args.slice_tokens, max_length=args.max_length,
                              kinds=args.kinds, seed=args.seed,
                              per_conversation=args.per_conversation, system=args.system)
    kinds_count = {k: sum(e.dialogue.kind == k for e in examples) for k in KINDS}
    log.info("%d conversations -> %d duplex dialogues %s", len(convs), len(examples), kinds_count)
    train_set = datasets.Dataset.from_list([{"input_ids": e.input_ids, "labels": e.labels}
                                            for e in examples])
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    if not args.full:
        model = _lora(model, tokenizer, args)

    out = Path(args.output)
    ckpt_dir = out / "checkpoints"
    targs = TrainingArguments(
        output_dir=str(ckpt_dir), per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=args.grad_accum, num_train_epochs=args.epochs,
        max_steps=args.max_steps, learning_rate=args.lr or (2e-5 if args.full else 2e-4),
        warmup_steps=args.warmup_ratio, lr_scheduler_type="cosine",
        logging_steps=args.logging_steps,
        logging_first_step=True, save_strategy="steps", save_steps=args.save_steps,
        save_total_limit=args.save_total_limit, bf16=bf16, use_cpu=not on_gpu, seed=args.seed,
        report_to="none", remove_unused_columns=False, dataloader_num_workers=0)
    collator = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100, pad_to_multiple_of=8)
    trainer = Trainer(model=model, args=targs, train_dataset=train_set, data_collator=collator)
    resume = _resume_point(args, ckpt_dir)
    if resume:
        log.info("resuming from %s", resume)
    result = trainer.train(resume_from_checkpoint=resume)

    final = trainer.model
    if not args.full:
        final = final.merge_and_unload()
    final.config.use_cache = True
    final.save_pretrained(out)
    tokenizer.save_pretrained(out)
    history = trainer.state.log_history
    (out / "train_log.json").write_text(json.dumps(history, indent=1))
    meta = {"format": FORMAT_VERSION, "slice_tokens": args.slice_tokens, "base_model": args.model,
            "kinds": args.kinds, "lora": not args.full, "steps": trainer.state.global_step,
            "train_loss": result.training_loss, "dialogues": len(examples), "resumed_from": resume}
    (out / TDM_META).write_text(json.dumps(meta, indent=1))
    print(f"saved the duplex model to {out} ({trainer.state.global_step} steps, "
          f"mean loss {result.training_loss:.4f}); serve it with "
          f"--set llm.engine=tdm --set llm.mode=duplex --set llm.model={out}")
    return 0
