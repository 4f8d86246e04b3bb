"""Chat LLM on transformers: streamed text deltas from our own KV-cached token loop.

`HFChatLLM(cfg)` loads any causal LM with a chat template from a Hub id or a
local directory (Hub cache first; offline misses raise ModelUnavailable).
"tiny-random" is the pipeline-test model built by `duplex.models.tiny`.

Why our own loop rather than `model.generate`: the cancel flag is checked
before every token (barge-in must stop generation at once) and text is
streamed without a helper thread. The prompt is prefilled once, then one
token per step reuses the KV cache.

Concurrency: each call has its own cache and sampler; the forward pass runs
under a per-engine lock held for one step at a time, so concurrent sessions
interleave token by token instead of racing inside the model.

Threads: on CPU, construction lowers torch's (process-wide) intra-op thread
count to half the cores unless OMP_NUM_THREADS is set; see `share_cpu`.
Nothing is changed on import.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from duplex.config import LLMConfig
from duplex.errors import ModelUnavailable
from duplex.models import hub

log = logging.getLogger(__name__)

# What a snapshot download fetches: configs, tokenizer files and safetensors weights
# (legacy pytorch_model.bin checkpoints are not fetched; convert them or pass a local dir).
MODEL_FILES = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "*.tiktoken"]


def pick_device(device: str) -> str:
    """"auto" -> "cuda" when available, else "cpu"; anything else is passed to torch."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"llm.device: {device!r} is not a torch device (use auto, cpu, cuda, cuda:0)") from exc
    return device


def pick_dtype(dtype: str, device: str):
    """"auto" -> bfloat16 on GPU, float32 on CPU; else a torch dtype name."""
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    value = getattr(torch, dtype, None)
    if not isinstance(value, torch.dtype):
        raise ValueError(f"llm.dtype: {dtype!r} is not a torch dtype (use auto, float32, bfloat16, float16)")
    return value


def resolve_causal_lm(kind: str, name: str) -> Path:
    """Local directory of a causal LM: "tiny-random" (built, announced loudly), a path or a Hub id."""
    if name == "tiny-random":
        from duplex.models.tiny import announce_tiny_model, ensure_tiny_llm

        announce_tiny_model(kind.upper())
        return ensure_tiny_llm()
    return hub.snapshot(kind, name, MODEL_FILES)


def load_causal_lm(kind: str, name: str, device: str = "auto", dtype: str = "auto"):
    """(tokenizer, model in eval mode on `device`) for `name`; `kind` is the config section
    named in errors. On CPU, torch threads are capped with `share_cpu`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_causal_lm(kind, name)
    device = pick_device(device)
    torch_dtype = pick_dtype(dtype, device)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
    except (OSError, ValueError, KeyError) as exc:
        raise hub.unavailable(kind, name, f"transformers cannot load {path} ({exc})") from exc
    if device == "cpu":
        share_cpu()
    return tokenizer, model.to(device).eval()


def share_cpu() -> int:
    """Cap torch's intra-op threads at half the cores (never raises it; OMP_NUM_THREADS wins).

    The LLM runs beside ASR, VAD and TTS threads; OpenMP threads that compete
    for cores spin against each other. Measured on 2 busy cores with the tiny
    model: ~55 ms/token with 2 threads, ~1.5 ms/token with 1. Returns the count in use.
    """
    import torch

    if "OMP_NUM_THREADS" not in os.environ:
        wanted = max(1, (os.cpu_count() or 2) // 2)
        if torch.get_num_threads() > wanted:
            log.info("torch intra-op threads: %d -> %d (half the cores)", torch.get_num_threads(), wanted)
            torch.set_num_threads(wanted)
    return torch.get_num_threads()


class IncrementalDetokenizer:
    """Turns a growing token list into text deltas whose concatenation is the full decode.

    A delta is only released once the text it ends with is stable: never an
    incomplete UTF-8 sequence (decoded as U+FFFD), and tokenizers that add a
    leading space by context (SentencePiece) are decoded with a token of
    left context so words are not glued or split wrongly.
    """

    def __init__(self, tokenizer):
        self.tok = tokenizer
        self.ids: list[int] = []
        self.prefix = 0  # start of the context window that is decoded
        self.read = 0  # tokens before this index were already released

    def _decode(self, ids: list[int]) -> str:
        return self.tok.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def push(self, token_id: int) -> str:
        """Add one token; return the newly stable text ("" when none)."""
        self.ids.append(int(token_id))
        before = self._decode(self.ids[self.prefix:self.read])
        now = self._decode(self.ids[self.prefix:])
        if len(now) > len(before) and not now.endswith("\ufffd"):
            self.prefix, self.read = self.read, len(self.ids)
            return now[len(before):]
        return ""

    def flush(self) -> str:
        """Text still held back at the end (e.g. an unfinished UTF-8 sequence), dropped if broken."""
        before = self._decode(self.ids[self.prefix:self.read])
        now = self._decode(self.ids[self.prefix:]).rstrip("\ufffd")
        self.prefix = self.read = len(self.ids)
        return now[len(before):]


class HFChatLLM:
    """LLM engine: `generate(messages, cancel=..., max_new_tokens=...)` yields text deltas."""

    def __init__(self, cfg: LLMConfig):
        import torch

        self.cfg = cfg
        self.name = cfg.model
        self.device = pick_device(cfg.device)
        self.tokenizer, self.model = load_causal_lm("llm", cfg.model, self.device, cfg.dtype)
        if not self.tokenizer.chat_template:
            raise ModelUnavailable("llm", cfg.model, "its tokenizer has no chat template",
                                   "use an instruct/chat model (e.g. Qwen/Qwen2.5-0.5B-Instruct)")
        gen_cfg = self.model.generation_config
        eos = gen_cfg.eos_token_id if gen_cfg.eos_token_id is not None else self.tokenizer.eos_token_id
        self.eos_ids = sorted({eos} if isinstance(eos, int) else set(eos or []))
        if self.tokenizer.eos_token_id is not None:
            self.eos_ids = sorted(set(self.eos_ids) | {self.tokenizer.eos_token_id})
        # Other special tokens (pad, bos, role markers) never belong in a spoken answer.
        self.suppress_ids = sorted(set(self.tokenizer.all_special_ids) - set(self.eos_ids))
        self.min_new_tokens = max(1, gen_cfg.min_new_tokens or 0)  # never an empty answer
        self._lock = threading.Lock()
        self._torch = torch

    def prompt_ids(self, messages: Sequence[dict]) -> list[int]:
        """The chat template applied to `messages`, with the assistant's turn opened."""
        if not messages:
            raise ValueError("generate needs at least one message")
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or not isinstance(m.get("role"), str) \
                    or not isinstance(m.get("content"), str):
                raise ValueError(f"message {i} must be a dict with string 'role' and 'content', got {m!r}")
        text = self.tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _processors(self, prompt_len: int):
        from transformers.generation.logits_process import (
            LogitsProcessorList,
            MinNewTokensLengthLogitsProcessor,
            SuppressTokensLogitsProcessor,
            TemperatureLogitsWarper,
            TopPLogitsWarper,
        )

        procs = LogitsProcessorList()
        if self.suppress_ids:
            procs.append(SuppressTokensLogitsProcessor(self.suppress_ids, device=self.device))
        if self.eos_ids:
            procs.append(MinNewTokensLengthLogitsProcessor(prompt_len, self.min_new_tokens, self.eos_ids,
                                                           device=self.device))
        if self.cfg.temperature > 0:
            procs.append(TemperatureLogitsWarper(self.cfg.temperature))
            if self.cfg.top_p < 1.0:
                procs.append(TopPLogitsWarper(self.cfg.top_p))
        return procs

    def generate(self, messages: Sequence[dict], *, cancel: threading.Event,
                 max_new_tokens: int | None = None) -> Iterator[str]:
        """Stream the reply to `messages` as text deltas; stops at EOS, the token limit or `cancel`."""
        limit = self.cfg.max_new_tokens if max_new_tokens is None else max_new_tokens
        if not isinstance(limit, int) or limit < 1:
            raise ValueError(f"max_new_tokens must be a positive integer, got {limit!r}")
        if not (0.0 < self.cfg.top_p <= 1.0) or self.cfg.temperature < 0:
            raise ValueError(f"llm sampling needs temperature >= 0 and 0 < top_p <= 1, got "
                             f"temperature={self.cfg.temperature}, top_p={self.cfg.top_p}")
        prompt = self.prompt_ids(messages)
        return self._loop(prompt, cancel, limit)

    def _loop(self, prompt: list[int], cancel: threading.Event, limit: int) -> Iterator[str]:
        torch = self._torch
        procs = self._processors(len(prompt))
        sampler = torch.Generator(device=self.device)
        if self.cfg.seed is not None:
            sampler.manual_seed(self.cfg.seed)
        else:
            sampler.seed()
        detok = IncrementalDetokenizer(self.tokenizer)
        seq = torch.tensor([prompt], device=self.device)
        step_input, past = seq, None
        for _ in range(limit):
            if cancel.is_set():
                return
            with self._lock, torch.inference_mode():
                out = self.model(input_ids=step_input, past_key_values=past, use_cache=True, logits_to_keep=1)
                past = out.past_key_values
                scores = procs(seq, out.logits[:, -1, :].float())
                if self.cfg.temperature > 0:
                    token = torch.multinomial(scores.softmax(-1), 1, generator=sampler)
                else:
                    token = scores.argmax(-1, keepdim=True)
                seq = torch.cat([seq, token], dim=1)
            token_id = int(token)
            if token_id in self.eos_ids:
                break
            step_input = token
            delta = detok.push(token_id)
            if delta and not cancel.is_set():
                yield delta
        tail = detok.flush()
        if tail and not cancel.is_set():
            yield tail
