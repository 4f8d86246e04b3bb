"""The duplex LLM engine: one model per server process, all sessions, slice by slice.

Contract (what the server calls; every method is thread-safe)::

    engine = DuplexEngine.load(cfg.llm)      # transformers model id or directory
    sid = engine.open(system_prompt)         # a session; nothing runs yet
    r = engine.step(sid, user_slice)         # one tick, from any worker thread
    r.text, r.tokens, r.state                # "speak" | "idle" | "eos"
    engine.rollback(sid, unspoken_chars)     # barge-in: forget what was not played
    engine.close(sid)

Modes (`cfg.mode`), same interface:
- "duplex": a TDM model (see `duplex.tdm.format`). Every tick call `step`
  with the text recognised since the last tick (None or "" when the user
  said nothing); the model writes up to K = `cfg.slice_tokens` tokens, or
  `<idle>`, or ends its response with `<eos>`. `end_of_turn` is ignored.
- "turn": a plain chat model via its chat template. `step` collects user
  slices; `step(sid, text, end_of_turn=True)` (the TurnTaker said the turn
  is over) starts the answer; call `step(sid)` again, without waiting for
  a tick, until the state is "eos". Other calls return "idle" at no cost.

States: "speak" — `text` is to be said and more may follow next tick;
"idle" — the assistant is silent after `text` (usually empty); "eos" — the
response is over after `text`. Speak whatever `text` a result carries.

Rollback: `unspoken_chars` is how many characters at the END of the
assistant text this session has received (the concatenation of every
`SliceResult.text`) were not played to the user — i.e. len(text sent) minus
len(text heard). The engine removes the tokens holding them (a token only
partly played counts as unspoken), crops the KV cache to match, and in
duplex mode writes `<cut>` after what was heard; later assistant slices
become `<idle>` (`duplex.tdm.format.rollback`). In turn mode the current
(or last) answer is cut. Calling it with 0 is a no-op.

Streaming: `step(..., on_text=cb)` calls `cb(delta)` as tokens decode, on
the engine's thread (keep it short: put the text on a queue), or iterate
`engine.stream(sid, user_slice)` for text deltas and read `.result` after.

Batching: calls arrive on a queue served by one engine thread. It waits up
to `cfg.batch_window_ms` after the first request for others (at most
`cfg.max_batch`), then decodes all of them in ONE batched forward pass per
token with per-session caches (`batch.decode_batch`). `step_many` queues
several slices at once so they share a pass for sure. Each session's cache
is kept between ticks and only the new tokens are prefilled: cost per tick
does not grow with the conversation (`recipes/tdm/bench.py` measures it).
"""
from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

from duplex.config import LLMConfig
from duplex.tdm.format import SpecialIds, Tick

from .batch import Row, decode_batch
from .contexts import IDLE, DuplexContext, SpokenText, TurnContext
from .sampling import make_chooser

log = logging.getLogger(__name__)
MODES = ("duplex", "turn")


@dataclass
class SliceResult:
    """What one tick produced for one session."""

    text: str  # text to speak now (may be "")
    tokens: list[int]  # every token the model wrote, terminator included
    state: str  # "speak" | "idle" | "eos"
    scores: list = field(default_factory=list)  # per-token logits, when asked for (float32, cpu)


@dataclass
class _Session:
    ctx: DuplexContext | TurnContext
    spoken: SpokenText
    choose: Callable
    kv: list | None = None
    cached: list[int] = field(default_factory=list)  # the ids the cache holds


@dataclass
class _Job:
    sid: str
    kind: str  # step | rollback | close
    future: Future
    user: str | None = None
    end_of_turn: bool = False
    forced: Sequence[int] | None = None
    on_text: Callable[[str], None] | None = None
    scores: bool = False
    budget: int | None = None
    amount: int = 0


class DuplexEngine:
    def __init__(self, model, tokenizer, cfg: LLMConfig):
        if cfg.mode not in MODES:
            raise ValueError(f"llm.mode must be one of {MODES}, got {cfg.mode!r}")
        if cfg.slice_tokens < 1 or cfg.max_batch < 1 or cfg.batch_window_ms < 0:
            raise ValueError("llm.slice_tokens and llm.max_batch must be >= 1, "
                             "llm.batch_window_ms >= 0")
        import torch

        self.model, self.tok, self.cfg = model, tokenizer, cfg
        self.mode = cfg.mode
        # the TDM markers exist in duplex mode only; turn mode serves a chat model untouched
        self.sp = SpecialIds.from_tokenizer(tokenizer) if self.mode == "duplex" else None
        self.stops = self.sp.stops if self.sp else _chat_stops(model, tokenizer)
        self.pad_id = tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
        # markers and other special tokens never belong in what the assistant says
        banned = (set(tokenizer.all_special_ids) | set(_marker_ids(self.sp))) - set(self.stops)
        self._banned = torch.tensor(sorted(banned), dtype=torch.long)
        self._sessions: dict[str, _Session] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._queue: queue.Queue[list[_Job]] = queue.Queue()  # items: jobs queued together
        self._held: list[_Job] = []  # drained but deferred to the next round
        # (sessions, tokens prefilled) of every batched pass, for tests and benchmarks
        self.passes: deque[tuple[int, int]] = deque(maxlen=10_000)
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="tdm-engine", daemon=True)
        self._thread.start()

    @classmethod
    def load(cls, cfg: LLMConfig) -> "DuplexEngine":
        from .loading import load_model

        model, tokenizer, _ = load_model(cfg)
        return cls(model, tokenizer, cfg)

    # --- sessions -------------------------------------------------------
    def open(self, system_prompt: str = "", history: Sequence[Tick] | None = None) -> str:
        """A new session. `history` (duplex mode) starts it from given ticks."""
        if not isinstance(system_prompt, str):
            raise TypeError(f"system_prompt must be a string, got {type(system_prompt).__name__}")
        if self.mode == "duplex":
            ctx = DuplexContext(self.tok, self.sp, system_prompt, self.cfg.max_context_tokens)
            if history:
                ctx.set_ticks(list(history))
        else:
            if history:
                raise ValueError("history is only for duplex mode")
            ctx = TurnContext(self.tok, system_prompt, stops=self.stops,
                              max_new_tokens=self.cfg.max_new_tokens,
                              history_turns=self.cfg.history_turns)
        with self._lock:
            sid = f"tdm-{next(self._ids)}"
            seed = None if self.cfg.seed is None else self.cfg.seed + len(self._sessions)
            choose = make_chooser(self.cfg.temperature, self.cfg.top_p, self._banned, seed)
            self._sessions[sid] = _Session(ctx, SpokenText(self.tok), choose)
        return sid

    def close(self, sid: str) -> None:
        self._call(_Job(sid, "close", Future()))

    def rollback(self, sid: str, unspoken_chars: int) -> int:
        """Forget the last `unspoken_chars` characters of assistant text; returns tokens removed."""
        if not isinstance(unspoken_chars, int) or unspoken_chars < 0:
            raise ValueError(f"unspoken_chars must be an integer >= 0, got {unspoken_chars!r}")
        return self._call(_Job(sid, "rollback", Future(), amount=unspoken_chars))

    def context_ids(self, sid: str) -> list[int]:
        """The token ids the model's context should hold now (the rendered history)."""
        return list(self._session(sid).ctx.ids)

    def cached_ids(self, sid: str) -> list[int]:
        """The token ids the session's KV cache holds now."""
        return list(self._session(sid).cached)

    def history(self, sid: str) -> list[Tick]:
        """Duplex mode: the ticks so far (what was heard and said)."""
        ctx = self._session(sid).ctx
        if not isinstance(ctx, DuplexContext):
            raise ValueError("history() is for duplex mode; turn mode keeps chat messages")
        return list(ctx.ticks)

    # --- ticks ----------------------------------------------------------
    def submit(self, sid: str, user_slice: str | None = None, *, end_of_turn: bool = False,
               on_text: Callable[[str], None] | None = None, forced: Sequence[int] | None = None,
               return_scores: bool = False, max_tokens: int | None = None) -> Future:
        """Queue one tick; the Future gives its SliceResult.

        `forced` (teacher forcing) makes the model "write" these tokens
        instead of sampling, e.g. to replay a recorded conversation.
        `max_tokens` overrides K for this call.
        """
        job = self._job(sid, user_slice, end_of_turn, on_text, forced, return_scores, max_tokens)
        self._put([job])
        return job.future

    def step(self, sid: str, user_slice: str | None = None, **kw) -> SliceResult:
        """One tick of one session (blocks; batched with other sessions' ticks)."""
        return self.submit(sid, user_slice, **kw).result()

    def step_many(self, requests: Sequence[tuple[str, str | None]], *, end_of_turn: bool = False,
                  forced: Sequence[int] | None = None, return_scores: bool = False,
                  max_tokens: int | None = None) -> list[SliceResult]:
        """Ticks of several sessions, queued together so they share one batched pass."""
        jobs = [self._job(sid, user, end_of_turn, None, forced, return_scores, max_tokens)
                for sid, user in requests]
        self._put(jobs)
        return [j.future.result() for j in jobs]

    def _job(self, sid, user, end_of_turn, on_text, forced, scores, max_tokens) -> _Job:
        self._session(sid)
        if user is not None and not isinstance(user, str):
            raise TypeError(f"user_slice must be a string or None, got {type(user).__name__}")
        budget = self.cfg.slice_tokens if max_tokens is None else max_tokens
        if budget < 1:
            raise ValueError(f"max_tokens must be >= 1, got {budget}")
        if forced is not None and not forced:
            raise ValueError("forced tokens must not be empty")
        return _Job(sid, "step", Future(), user, end_of_turn, forced, on_text, scores,
                    len(forced) if forced else budget)

    def stream(self, sid: str, user_slice: str | None = None, **kw) -> "SliceStream":
        """Like `step`, as an iterator of text deltas; `.result` once it is exhausted."""
        return SliceStream(self, sid, user_slice, kw)

    def shutdown(self) -> None:
        self._closed = True
        self._queue.put([_Job("", "stop", Future())])
        self._thread.join(timeout=10)

    # --- the engine thread ----------------------------------------------
    def _session(self, sid: str) -> _Session:
        with self._lock:
            s = self._sessions.get(sid)
        if s is None:
            raise KeyError(f"no open TDM session {sid!r}")
        return s

    def _put(self, jobs: list[_Job]) -> None:
        if self._closed:
            raise RuntimeError("the TDM engine is shut down")
        self._queue.put(list(jobs))  # one item: the engine thread sees all of them at once

    def _call(self, job: _Job):
        self._session(job.sid)
        self._put([job])
        return job.future.result()

    def _serve(self) -> None:
        while True:
            jobs = self._collect()
            if jobs is None:
                return
            try:
                self._round(jobs)
            except Exception as exc:  # noqa: BLE001 - never let the engine thread die
                log.exception("TDM engine round failed")
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
                self._held = [j for j in self._held if not j.future.done()]

    def _round(self, jobs: list[_Job]) -> None:
        steps, busy = [], set()
        for job in jobs:
            if job.sid in busy:  # behind this session's step: next round, in order
                self._held.append(job)
            elif job.kind == "step":
                busy.add(job.sid)
                (steps if len(steps) < self.cfg.max_batch else self._held).append(job)
            else:
                self._control(job)
        if steps:
            self._run(steps)

    def _collect(self) -> list[_Job] | None:
        jobs, self._held = self._held, []
        if not jobs:
            jobs += self._queue.get()
        deadline = time.monotonic() + self.cfg.batch_window_ms / 1000
        while sum(j.kind == "step" for j in jobs) < self.cfg.max_batch:
            try:
                timeout = deadline - time.monotonic()
                jobs += (self._queue.get(timeout=timeout) if timeout > 0
                         else self._queue.get_nowait())
            except queue.Empty:
                break
        if any(j.kind == "stop" for j in jobs):
            for j in jobs:
                j.future.cancel()
            return None
        return jobs

    def _control(self, job: _Job) -> None:
        try:
            s = self._session(job.sid)
            if job.kind == "close":
                with self._lock:
                    self._sessions.pop(job.sid, None)
                job.future.set_result(None)
            elif job.kind == "rollback":
                n = s.spoken.tokens_for_chars(job.amount)
                removed = s.ctx.rollback(n)
                s.spoken.drop(removed)
                job.future.set_result(removed)
        except Exception as exc:  # noqa: BLE001 - handed to the caller
            job.future.set_exception(exc)

    def _run(self, jobs: list[_Job]) -> None:
        rows, live = [], []
        for job in jobs:
            s = self._sessions.get(job.sid)
            if s is None:
                job.future.set_exception(KeyError(f"TDM session {job.sid!r} was closed"))
                continue
            snap = s.ctx.snapshot()
            try:
                budget = s.ctx.begin(job.user, job.end_of_turn, job.budget)
            except Exception as exc:  # noqa: BLE001 - e.g. a chat template refusing the history
                s.ctx.restore(snap)
                job.future.set_exception(exc)
                continue
            if budget <= 0:  # turn mode, not answering: nothing to decode
                job.future.set_result(SliceResult("", [], IDLE))
                continue
            texts: list[str] = []
            rows.append(self._row(s, budget, job, texts))
            live.append((job, s, (snap, len(s.spoken.ids)), texts))
        if not rows:
            return
        self.passes.append((len(rows), sum(len(r.feed) for r in rows)))
        try:
            decode_batch(self.model, rows, self.pad_id)
        except Exception as exc:  # noqa: BLE001 - every caller of the pass gets the error
            log.exception("TDM decoding failed")
            for job, s, (snap, spoken), _ in live:
                s.ctx.restore(snap)
                s.spoken.drop(len(s.spoken.ids) - spoken)
                s.kv, s.cached = None, []  # rebuilt from ids at the next tick
                job.future.set_exception(exc)
            return
        for row, (job, s, _, texts) in zip(rows, live):
            state, _text_tokens = s.ctx.finish(row.tokens)
            s.kv, s.cached = row.kv, s.ctx.ids[: row.length]
            job.future.set_result(SliceResult("".join(texts), row.tokens, state, row.scores))

    def _row(self, s: _Session, budget: int, job: _Job, texts: list[str]) -> Row:
        """Sync the session's cache to its ids: crop to the common prefix, feed the rest."""
        ids = s.ctx.ids
        common = 0
        for a, b in zip(s.cached, ids):
            if a != b:
                break
            common += 1
        common = min(common, len(ids) - 1)  # always feed at least one token
        if s.kv is not None and common < len(s.cached):
            s.kv = [(k[:, :, :common], v[:, :, :common]) for k, v in s.kv]
        kv = s.kv if common > 0 else None
        stops = s.ctx.stops

        def on_token(token: int) -> None:
            if token in stops:
                return
            delta = s.spoken.push(token)
            if delta:
                texts.append(delta)
                if job.on_text is not None:
                    try:
                        job.on_text(delta)
                    except Exception:  # noqa: BLE001 - a caller's callback must not stop the batch
                        log.exception("on_text callback failed (session %s)", job.sid)

        return Row(kv=kv, length=common, feed=ids[common:], max_new=budget, stops=stops,
                   choose=s.choose, forced=job.forced, on_token=on_token, keep_scores=job.scores)


def _marker_ids(sp: SpecialIds | None) -> list[int]:
    return [sp.system, sp.user, sp.assistant, sp.idle, sp.eos, sp.cut] if sp else []


def _chat_stops(model, tokenizer) -> frozenset[int]:
    """End-of-answer tokens of a chat model: generation config and tokenizer eos."""
    eos = getattr(model.generation_config, "eos_token_id", None)
    ids = {eos} if isinstance(eos, int) else set(eos or [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    if not ids:
        raise ValueError("turn mode needs a chat model with an end-of-sequence token")
    return frozenset(int(i) for i in ids)


class SliceStream:
    """Iterator of a tick's text deltas as they decode; `.result` when done."""

    def __init__(self, engine: DuplexEngine, sid: str, user: str | None, kw: dict):
        self._q: queue.Queue = queue.Queue()
        self.result: SliceResult | None = None
        self._future = engine.submit(sid, user, on_text=self._q.put, **kw)
        self._future.add_done_callback(lambda _: self._q.put(None))

    def __iter__(self) -> Iterator[str]:
        while (delta := self._q.get()) is not None:
            yield delta
        self.result = self._future.result()
