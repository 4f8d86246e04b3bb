"""Benchmark: the cost of one duplex slice as the conversation grows.

    python -m duplex.recipes.tdm.bench [--model DIR|ID] [--contexts 512,2048,4096] [--json out.json]

For each context length it times one tick (user slice in, K tokens out)
two ways:
- kv reuse: `DuplexEngine.step`, the session's KV cache kept across ticks,
  so only the new user slice is prefilled;
- re-prefill: the reference demo's way, the whole history run through the
  model every slice (then K tokens decoded), which grows with the history.
Then, at one context length, how many sessions one model keeps in real
time (a tick's slices decoded within the slice period) when their slices
are batched into one pass, against stepping them one after another.

Without --model it builds a random Qwen2-style model (--hidden, --layers)
with the tiny local tokenizer: no download, numbers for the mechanics. Pass
a real model directory or id for real figures (e.g. on a GPU).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m duplex.recipes.tdm.bench",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="model dir or id (default: random, built here)")
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--contexts", default="512,2048,4096", help="history lengths in tokens")
    p.add_argument("--slices", type=int, default=5, help="timed slices per measurement (best kept)")
    p.add_argument("--k", type=int, default=10, help="assistant tokens per slice")
    p.add_argument("--sessions", default="1,2,4,8,16", help="batch sizes for the capacity test")
    p.add_argument("--batch-context", type=int, default=512,
                   help="history length for the capacity test")
    p.add_argument("--slice-s", type=float, default=0.5, help="tick period: the real-time budget")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--json", default=None, help="write the results here")
    return p.parse_args(argv)


def _random_model(tok, hidden: int, layers: int, device: str):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 3,
                      num_hidden_layers=layers, num_attention_heads=max(1, hidden // 64),
                      num_key_value_heads=max(1, hidden // 128), max_position_embeddings=16384,
                      pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    return Qwen2ForCausalLM(cfg).to(device).eval()


def _history(tok, sp, length: int, k: int, rng: random.Random):
    """Ticks of user words and K-token assistant slices, about `length` tokens long."""
    from duplex.tdm.format import AssistantSlice, Tick

    words = [w for w in tok.get_vocab() if w.startswith("Ġ") and w[1:].isalpha()]
    text_ids = [tok.convert_tokens_to_ids(w) for w in words]
    ticks, n = [], 0
    while n < length:
        user = " ".join(rng.choice(words)[1:] for _ in range(rng.randint(4, 6)))
        said = tuple(rng.choice(text_ids) for _ in range(k))
        ticks.append(Tick(user, AssistantSlice(said, None)))
        n += 2 + 5 + k
    return ticks, text_ids


def _paired(fa, fb, repeat: int) -> tuple[float, float]:
    """Best times of `fa` and `fb`, run alternately after a warm-up: on a shared
    machine both then see the same load, and the minimum is the least disturbed run."""
    fa(), fb()
    ta, tb = [], []
    for _ in range(repeat):
        for fn, out in ((fa, ta), (fb, tb)):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return min(ta), min(tb)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    import torch
    from duplex.models.llm_hf import pick_device
    from duplex.models.tdm import DuplexEngine
    from duplex.models.tdm.contexts import encode_text
    from duplex.models.tdm.loading import add_tdm_tokens, load_model
    from duplex.models.tiny import ensure_tiny_llm
    from transformers import AutoTokenizer

    from duplex.config import LLMConfig
    from duplex.tdm.format import SpecialIds, render_user

    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    if args.model:
        model, tok, _ = load_model(LLMConfig(model=args.model, device=device, mode="duplex"))
        name = args.model
    else:
        tok = AutoTokenizer.from_pretrained(ensure_tiny_llm())
        add_tdm_tokens(tok)
        model = _random_model(tok, args.hidden, args.layers, device)
        name = f"random qwen2 (hidden {args.hidden}, {args.layers} layers)"
    params = sum(p.numel() for p in model.parameters())
    sp = SpecialIds.from_tokenizer(tok)
    engine = DuplexEngine(model, tok, LLMConfig(engine="tdm", model=name, mode="duplex",
                                                slice_tokens=args.k, temperature=0.0,
                                                batch_window_ms=0, max_context_tokens=1 << 20))
    rng = random.Random(0)
    print(f"model: {name}, {params / 1e6:.1f} M parameters, device {device}, "
          f"{args.threads} CPU threads, K={args.k}")
    results = {"model": name, "parameters": params, "device": device, "k": args.k,
               "per_slice": [], "capacity": {}}

    @torch.inference_mode()
    def reprefill(ids: list[int], forced: list[int]) -> None:
        out = model(input_ids=torch.tensor([ids], device=model.device), use_cache=True)
        cache = out.past_key_values
        for t in forced[:-1]:  # then decode the slice, as generate() would
            out = model(input_ids=torch.tensor([[t]], device=model.device), past_key_values=cache,
                        use_cache=True)
            cache = out.past_key_values

    print(f"{'context':>8} {'kv reuse ms':>12} {'re-prefill ms':>14} {'time ratio':>11} "
          f"{'tokens run (reuse / re-prefill)':>32}")
    for length in [int(x) for x in args.contexts.split(",")]:
        ticks, text_ids = _history(tok, sp, length, args.k, rng)
        sid = engine.open("You are a helpful voice assistant.", history=ticks)
        forced = [rng.choice(text_ids) for _ in range(args.k)]
        user = "so what do you think"

        def reuse():
            engine.step(sid, user, forced=forced)

        engine.step(sid, user, forced=forced)  # the first step prefills the history: not timed
        prompt = engine.context_ids(sid) + render_user(user, lambda s: encode_text(tok, s), sp)
        t_reuse, t_full = _paired(reuse, lambda: reprefill(prompt, forced), args.slices)
        engine.close(sid)
        ratio = t_full / t_reuse
        # tokens the model runs per slice: the pending token + the user slice, then K-1 decodes
        fed_reuse = engine.passes[-1][1] + args.k - 1
        fed_full = len(prompt) + args.k - 1
        results["per_slice"].append({"context": len(prompt), "kv_reuse_s": t_reuse,
                                     "reprefill_s": t_full, "time_ratio": ratio,
                                     "tokens_kv_reuse": fed_reuse, "tokens_reprefill": fed_full})
        print(f"{len(prompt):>8} {t_reuse * 1e3:>12.1f} {t_full * 1e3:>14.1f} {ratio:>10.1f}x "
              f"{fed_reuse:>15} / {fed_full:<14}")

    sizes = [int(x) for x in args.sessions.split(",")]
    ticks, text_ids = _history(tok, sp, args.batch_context, args.k, rng)
    sids = [engine.open("You are a helpful voice assistant.", history=ticks)
            for _ in range(max(sizes))]
    engine.step_many([(s, "hello") for s in sids])  # prefill every session once
    print(f"\nsessions at ~{args.batch_context} tokens, tick period {args.slice_s}s:")
    print(f"{'sessions':>8} {'batched ms':>11} {'one by one ms':>14}")
    timing = {}
    for n in sizes:
        group = sids[:n]
        forced = [rng.choice(text_ids) for _ in range(args.k)]
        t_batch, t_serial = _paired(
            lambda: engine.step_many([(s, "go on") for s in group], forced=forced),
            lambda: [engine.step(s, "go on", forced=forced) for s in group], args.slices)
        timing[n] = (t_batch, t_serial)
        print(f"{n:>8} {t_batch * 1e3:>11.1f} {t_serial * 1e3:>14.1f}")
    unbatched = max((n for n, (_, t) in timing.items() if t <= args.slice_s), default=0)
    batched = max((n for n, (t, _) in timing.items() if t <= args.slice_s), default=0)
    results["capacity"] = {"context": args.batch_context, "slice_s": args.slice_s,
                           "timings_s": {n: {"batched": t, "one_by_one": s}
                                         for n, (t, s) in timing.items()},
                           "realtime_sessions_unbatched": unbatched,
                           "realtime_sessions_batched": batched,
                           "largest_size_tried": max(sizes)}
    def shown(n):
        return f"{n}+" if n == max(sizes) else str(n)

    print(f"real-time sessions: {shown(batched)} batched vs {shown(unbatched)} one by one")
    engine.shutdown()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
