"""`duplex eval tdm`: how well a duplex model decides when to talk.

    duplex eval tdm --model runs/tdm-qwen0.5b --data builtin --out runs/tdm-qwen0.5b/eval.json

On held-out duplex dialogues (built like the training data, another seed):
- idle accuracy: at every assistant slice, does the model's first token
  choose right between `<idle>` and speaking (teacher-forced history)?
- termination: at every cut-in, does it stop at once (first token `<idle>`
  or `<eos>`), and does the slice it writes freely (greedy, through the
  serving engine) end within that one slice instead of running on?
- backchannel: when the user only says "mm-hm", does it keep talking?
- response loss: mean cross-entropy on the assistant's tokens (loss mask),
  and on its text tokens alone.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

from duplex.tdm.kinds import KINDS

log = logging.getLogger(__name__)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="duplex eval tdm", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="model directory (from duplex train tdm) or id")
    p.add_argument("--data", default="builtin", help="JSONL, HF dataset name, or builtin")
    p.add_argument("--split", default="test", help="dataset split (HF datasets)")
    p.add_argument("--messages-field", default="messages")
    p.add_argument("--limit", type=int, default=200, help="conversations to evaluate")
    p.add_argument("--kinds", default=",".join(KINDS))
    p.add_argument("--slice-tokens", type=int, default=None, help="K (default: as trained)")
    p.add_argument("--seed", type=int, default=1234, help="dialogue seed (differs from training's)")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=None, help="write the report as JSON here")
    args = p.parse_args(argv)
    args.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if unknown := set(args.kinds) - set(KINDS):
        p.error(f"unknown --kinds {sorted(unknown)} (known: {', '.join(KINDS)})")
    return args


def _ratio(hits: int, n: int) -> float | None:
    return hits / n if n else None


def evaluate(model, tokenizer, dialogues, k: int) -> dict:
    """The report for `dialogues` (see the module docstring)."""
    import torch
    from duplex.models.tdm import DuplexEngine
    from duplex.models.tdm.contexts import encode_text

    from duplex.config import LLMConfig
    from duplex.tdm.format import SpecialIds, render, render_user

    sp = SpecialIds.from_tokenizer(tokenizer)
    engine = DuplexEngine(model, tokenizer, LLMConfig(engine="tdm", model="(loaded)", mode="duplex",
                                                      slice_tokens=k, temperature=0.0,
                                                      batch_window_ms=0))

    def encode(text):
        return encode_text(tokenizer, text)

    c = dict(loss=0.0, n_loss=0, text_loss=0.0, n_text=0, decisions=0, right=0, idle_true=0,
             idle_pred=0, idle_hit=0, cuts=0, stop_now=0, stop_slice=0, bcs=0, bc_talk=0)
    try:
        for d in dialogues:
            r = render(d, encode, sp)
            ids = torch.tensor([r.ids], device=model.device)
            with torch.inference_mode():
                logits = model(input_ids=ids).logits[0].float()
            logp = torch.log_softmax(logits[:-1], -1)
            target = ids[0, 1:]
            nll = -logp.gather(1, target[:, None])[:, 0]
            mask = torch.tensor(r.mask[1:], device=nll.device, dtype=torch.bool)
            text = mask & (target != sp.idle) & (target != sp.eos)
            c["loss"] += float(nll[mask].sum())
            c["n_loss"] += int(mask.sum())
            c["text_loss"] += float(nll[text].sum())
            c["n_text"] += int(text.sum())
            pred = logits.argmax(-1)
            for t, (tick, start) in enumerate(zip(d.ticks, r.tick_starts)):
                pos = start + len(render_user(tick.user, encode, sp))  # the slice's first token
                if not r.mask[pos]:
                    continue  # a slice of `<cut>` only: nothing was predicted
                want_idle, said_idle = r.ids[pos] == sp.idle, int(pred[pos - 1]) == sp.idle
                c["decisions"] += 1
                c["right"] += want_idle == said_idle
                c["idle_true"] += want_idle
                c["idle_pred"] += said_idle
                c["idle_hit"] += want_idle and said_idle
                if t in d.backchannels:
                    c["bcs"] += 1
                    c["bc_talk"] += not said_idle
                if t in d.cut_ins:
                    c["cuts"] += 1
                    c["stop_now"] += int(pred[pos - 1]) in (sp.idle, sp.eos)
                    sid = engine.open(d.system, history=d.ticks[:t])
                    res = engine.step(sid, tick.user)
                    engine.close(sid)
                    c["stop_slice"] += res.state in ("idle", "eos")
    finally:
        engine.shutdown()
    return {
        "dialogues": len(dialogues),
        "slice_tokens": k,
        "idle_accuracy": _ratio(c["right"], c["decisions"]),
        "idle_precision": _ratio(c["idle_hit"], c["idle_pred"]),
        "idle_recall": _ratio(c["idle_hit"], c["idle_true"]),
        "decisions": c["decisions"],
        "termination_immediate": _ratio(c["stop_now"], c["cuts"]),
        "termination_within_slice": _ratio(c["stop_slice"], c["cuts"]),
        "cut_ins": c["cuts"],
        "backchannel_keeps_talking": _ratio(c["bc_talk"], c["bcs"]),
        "backchannels": c["bcs"],
        "response_loss": c["loss"] / c["n_loss"] if c["n_loss"] else math.nan,
        "text_loss": c["text_loss"] / c["n_text"] if c["n_text"] else math.nan,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(argv or []))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from duplex.models.tdm.loading import load_model, model_path, read_meta

    from duplex.config import LLMConfig

    from .data import load_conversations, make_dialogues

    meta = read_meta(model_path(args.model)) if args.model != "tiny-random" else {}
    k = args.slice_tokens or meta.get("slice_tokens") or 10
    model, tokenizer, _ = load_model(LLMConfig(model=args.model, device=args.device, mode="duplex",
                                               slice_tokens=k))
    convs = load_conversations(args.data, split=args.split, field=args.messages_field,
                               limit=args.limit)
    dialogues = make_dialogues(convs, tokenizer, k=k, kinds=args.kinds, seed=args.seed)
    report = evaluate(model, tokenizer, dialogues, k)
    report = {"model": args.model, "data": args.data, **report}
    width = max(map(len, report))
    for key, value in report.items():
        shown = f"{value:.4f}" if isinstance(value, float) else value
        print(f"{key:<{width}}  {shown}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=1))
    return 0

