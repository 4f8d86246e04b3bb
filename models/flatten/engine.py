"""The streaming engine of the flattened speech-text model (session pipeline "flatten").

Contract for the server:

    engine = FlattenEngine.load(cfg.flatten)   # once per process, shared by sessions
    stream = engine.stream()                   # one per session (own KV cache, codec state)
    out = stream.step(user_audio)              # float32 mono at cfg.flatten.input_rate
                                               # (16 kHz by default, the core's rate),
                                               # any length, ideally one chunk
                                               # (engine.chunk_samples = 160 ms)
    out.audio  # float32 mono agent audio at engine.output_rate (the codec's, 24 kHz)
    out.text   # agent text written in those chunks (append-only delta, for
               # response.output_audio_transcript.delta)
    stream.reset()                             # forget the conversation

`step` buffers audio until it completes a chunk, so it returns one chunk of
agent audio (3840 samples at 24 kHz) per 160 ms of input once the first chunk
is complete (an empty array before). Every chunk: the new user audio is
encoded by the codec's streaming encoder and appended as `<|u|> U...`, then
`<|a|>`; the agent's text slots and codes are sampled one position at a time
with logits masked to the ids valid there (`sampling`); the agent codes are
decoded by the streaming decoder. The agent audio of chunk c is the model's
answer to the user audio up to the end of chunk c, so it plays during c+1.
Calls for one stream must not overlap; different streams may run in
different threads at once (the model holds no per-stream state). Costs per
step are in `out.encode_s`, `out.lm_s`, `out.decode_s`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from duplex.audio import StreamResampler
from duplex.config import FlattenConfig
from duplex.errors import ModelUnavailable
from duplex.flatten import VARIANTS, Kind

from .sampling import PositionSampler
from .spec import FlattenSpec
from .text import word_codec

HINT = ("train one with `duplex train flatten ...` and pass its output directory with "
        "--set flatten.model=/path/to/model")


@dataclass
class StepOutput:
    audio: np.ndarray  # agent audio, float32 at the engine's output_rate
    text: str = ""  # agent text delta
    user_text: str = ""  # the model's transcript of the user (full_user_text models only)
    chunks: int = 0  # chunks completed by this step
    tokens: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    encode_s: float = 0.0
    lm_s: float = 0.0
    decode_s: float = 0.0


class TextDelta:
    """Text-slot ids -> append-only text: words separated by spaces, shown as they grow."""

    def __init__(self, pad: int, epad: int, detokenize):
        self.pad, self.epad, self.detokenize = pad, epad, detokenize
        self.ids: list[int] | None = None
        self.shown, self.space, self.words = "", False, 0

    def feed(self, token: int) -> str:
        if token in (self.pad, self.epad):
            self.ids = None
            return ""
        if self.ids is None:
            self.ids, self.shown, self.space = [], "", self.words > 0
            self.words += 1
        self.ids.append(token)
        text = self.detokenize(self.ids)
        # a byte-level token may end mid-character; wait for the rest
        if not text or text.endswith("\ufffd") or not text.startswith(self.shown):
            return ""
        delta, self.shown = text[len(self.shown):], text
        if delta and self.space:
            delta, self.space = " " + delta, False
        return delta


def _dtype(name: str, device: str) -> torch.dtype:
    if name in ("", "auto"):
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16,
                "float16": torch.float16}[name]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r} (known: auto, float32, bfloat16, float16)")


class FlattenEngine:
    def __init__(self, lm, tokenizer, codec, spec: FlattenSpec, cfg: FlattenConfig):
        layout, vocab = spec.layout, spec.vocab
        if codec.codebook_size != vocab.codebook_size or codec.num_codebooks != vocab.num_codebooks:
            raise ValueError(f"codec {codec.name!r} has {codec.num_codebooks} x "
                             f"{codec.codebook_size} codes, the model expects "
                             f"{vocab.num_codebooks} x {vocab.codebook_size}")
        if abs(codec.frame_rate - layout.frame_rate) > 1e-6:
            raise ValueError(f"codec {codec.name!r} runs at {codec.frame_rate} Hz, the model was "
                             f"trained at {layout.frame_rate} Hz")
        if lm.get_input_embeddings().weight.shape[0] < vocab.size:
            raise ValueError(f"the model's embedding table has fewer rows than its vocabulary "
                             f"({vocab.size}): wrong flatten.json?")
        self.lm, self.tokenizer, self.codec = lm.eval(), tokenizer, codec
        self.spec, self.cfg = spec, cfg
        self.vocab, self.layout = vocab, layout
        self.positions = layout.positions()
        self.device = next(lm.parameters()).device
        self.sampler = PositionSampler(vocab, layout, list(tokenizer.all_special_ids), self.device)
        self.tokenize, self.detokenize = word_codec(tokenizer)
        self.input_rate = int(cfg.input_rate)
        self.output_rate = int(codec.sample_rate)
        self.chunk_samples = int(round(self.input_rate * layout.chunk_ms / 1000))
        self.max_chunks = max(2, int(cfg.max_context_s * 1000 / layout.chunk_ms))

    @classmethod
    def load(cls, cfg: FlattenConfig) -> FlattenEngine:
        """The model directory `cfg.model` (made by `duplex train flatten`) and its codec."""
        from duplex.models import hub
        from duplex.models.codec import find_model, load_codec, resolve_device
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = find_model("flatten", cfg.model, HINT)
        try:
            spec = FlattenSpec.load(path)
        except (FileNotFoundError, ValueError, KeyError) as exc:
            raise ModelUnavailable("flatten", cfg.model, str(exc), HINT) from exc
        if spec.stage not in VARIANTS:
            raise ValueError(f"{cfg.model!r} is a {spec.stage!r}-stage model; only full-duplex "
                             f"stages ({', '.join(VARIANTS)}) stream")
        if cfg.num_codebooks != spec.layout.num_codebooks or cfg.chunk_ms != spec.layout.chunk_ms:
            raise ValueError(
                f"flatten model {cfg.model!r} was trained with num_codebooks="
                f"{spec.layout.num_codebooks}, chunk_ms={spec.layout.chunk_ms}; the config asks "
                f"for {cfg.num_codebooks}, {cfg.chunk_ms} (set flatten.num_codebooks / chunk_ms)")
        device = resolve_device(cfg.device)
        try:
            tokenizer = AutoTokenizer.from_pretrained(path)
            lm = AutoModelForCausalLM.from_pretrained(path, dtype=_dtype(cfg.dtype, device))
        except Exception as exc:
            raise ModelUnavailable("flatten", cfg.model, hub.describe(exc), HINT) from exc
        codec = load_codec(cfg.codec or spec.codec, spec.layout.num_codebooks, device)
        return cls(lm.to(device), tokenizer, codec, spec, cfg)

    def stream(self) -> FlattenStream:
        return FlattenStream(self)

    @torch.inference_mode()
    def teacher_forced(self, tokens: np.ndarray) -> np.ndarray:
        """Greedy choice at every generated position of whole chunks `tokens`, from one
        offline forward pass (-1 at input positions): what a greedy stream must write."""
        tokens = np.asarray(tokens, np.int64)
        n = self.layout.length
        if len(tokens) == 0 or len(tokens) % n:
            raise ValueError(f"expected whole chunks of {n} tokens, got {len(tokens)}")
        logits = self.lm(input_ids=torch.from_numpy(tokens)[None].to(self.device)).logits[0]
        out = np.full(len(tokens), -1, np.int64)
        for i in range(1, len(tokens)):
            kind, idx, _ = self.positions[i % n]
            if kind in (Kind.AGENT_TEXT, Kind.USER_TEXT, Kind.AGENT_CODE):
                out[i] = self.sampler.choose(logits[i - 1], kind, idx)
        return out


class FlattenStream:
    def __init__(self, engine: FlattenEngine):
        self.engine = engine
        self.encoder = engine.codec.encoder_stream()
        self.decoder = engine.codec.decoder_stream()
        self.reset()

    def reset(self) -> None:
        e = self.engine
        self.encoder.reset()
        self.decoder.reset()
        self.resampler = StreamResampler(e.input_rate, e.output_rate)
        self.frames = np.zeros((e.layout.num_codebooks, 0), np.int64)
        self.kv = None
        self.pending: list[int] = []  # known tokens not yet fed to the model
        self.history: list[list[int]] = []  # tokens of the chunks in the context
        self.agent_text = TextDelta(e.vocab.pad, e.vocab.epad, e.detokenize)
        self.user_text = TextDelta(e.vocab.pad, e.vocab.epad, e.detokenize)
        self.generator = None
        if e.cfg.seed is not None:
            self.generator = torch.Generator(device=e.device).manual_seed(int(e.cfg.seed))

    def step(self, user_audio: np.ndarray) -> StepOutput:
        """User audio at the engine's input_rate in; agent audio and text for every
        chunk it completes out."""
        audio = np.asarray(user_audio)
        if audio.ndim != 1 or not np.issubdtype(audio.dtype, np.floating):
            raise ValueError(f"user audio must be mono float32, got {audio.dtype} {audio.shape}")
        t0 = time.perf_counter()
        codes = self.encoder.encode(self.resampler(audio.astype(np.float32, copy=False)))
        encode_s = time.perf_counter() - t0
        out = self.step_codes(codes)
        out.encode_s = encode_s
        return out

    def step_codes(self, user_codes: np.ndarray) -> StepOutput:
        """Like `step`, from the user's codes [Q, frames] (already encoded)."""
        e = self.engine
        codes = np.asarray(user_codes)
        if codes.ndim != 2 or codes.shape[0] != e.layout.num_codebooks or \
                not np.issubdtype(codes.dtype, np.integer):
            raise ValueError(f"user codes must be integers shaped [{e.layout.num_codebooks}, "
                             f"frames], got {codes.dtype} {codes.shape}")
        self.frames = np.concatenate([self.frames, codes.astype(np.int64)], axis=1)
        out = StepOutput(np.zeros(0, np.float32))
        audio, tokens = [], []
        f = e.layout.frames
        while self.frames.shape[1] >= f:
            chunk, self.frames = self.frames[:, :f], self.frames[:, f:]
            t0 = time.perf_counter()
            agent, toks, text, user_text = self._chunk(chunk)
            t1 = time.perf_counter()
            audio.append(self.decoder.decode(agent))
            out.decode_s += time.perf_counter() - t1
            out.lm_s += t1 - t0
            out.text += text
            out.user_text += user_text
            out.chunks += 1
            tokens += toks
        if audio:
            out.audio = np.concatenate(audio)
        out.tokens = np.array(tokens, np.int64)
        return out

    def _forward(self) -> torch.Tensor:
        """Feed the pending tokens; logits for the next position."""
        ids = torch.tensor([self.pending], device=self.engine.device)
        res = self.engine.lm(input_ids=ids, past_key_values=self.kv, use_cache=True,
                             logits_to_keep=1)
        self.kv, self.pending = res.past_key_values, []
        return res.logits[0, -1]

    def _trim_context(self) -> None:
        """Past max_context_s, keep the newer half and re-prefill it on the next forward."""
        if len(self.history) < self.engine.max_chunks:
            return
        self.history = self.history[-(self.engine.max_chunks // 2):]
        self.kv = None
        self.pending = [t for chunk in self.history for t in chunk]

    @torch.inference_mode()
    def _chunk(self, user_codes: np.ndarray) -> tuple[np.ndarray, list[int], str, str]:
        e = self.engine
        self._trim_context()
        vocab, q = e.vocab, e.layout.num_codebooks
        user_ids = vocab.code_ids(user_codes)
        agent = np.zeros_like(user_codes)
        tokens: list[int] = []
        text = user_text = ""
        cfg = e.cfg
        for kind, idx, ctrl in e.positions:
            if kind == Kind.CONTROL:
                tok = vocab.special(ctrl)
            elif kind == Kind.USER_CODE:
                tok = int(user_ids[idx % q, idx // q])
            else:
                is_text = kind != Kind.AGENT_CODE
                tok = e.sampler.choose(
                    self._forward(), kind, idx,
                    cfg.text_temperature if is_text else cfg.temperature,
                    cfg.text_top_k if is_text else cfg.top_k, self.generator)
                if kind == Kind.AGENT_CODE:
                    agent[idx % q, idx // q] = tok - vocab.code_range(idx % q)[0]
                elif kind == Kind.AGENT_TEXT:
                    text += self.agent_text.feed(tok)
                else:
                    user_text += self.user_text.feed(tok)
            self.pending.append(tok)
            tokens.append(tok)
        self.history.append(tokens)
        return agent, tokens, text, user_text
