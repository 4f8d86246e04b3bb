"""One WebSocket connection: drives a `duplex.session.Session` in real time.

Layout per connection (all coroutines on the event loop; model calls go to
thread pools):

    reader ──> Session ──> dispatcher ──> writer (socket)
                 ^   │                ├─> perception queue ──> perception worker
                 │   │                ├─> asr queue ──> asr worker
                 │   │                ├─> tts queue ──> tts worker
                 │   │                └─> llm task per response
                 └───┴── results (on the loop), then the dispatcher is woken

Only the dispatcher routes actions, so their order is kept; workers never
wait for it, so no cycle of full queues can lock up. Every queue is bounded.
Stale work is dropped by design: workers check the job's generation against
the session's current response before starting it, and `Cancel` sets the
generation's cancel event, which LLM and TTS threads poll between tokens/chunks.
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from duplex import actions as A
from duplex.audio import StreamResampler
from duplex.session import Session

from .channel import ThreadChannel

log = logging.getLogger("duplex.server")
TICK_S = 0.02
MAX_BACKLOG = 512  # pending actions before the reader waits for the dispatcher


@dataclass
class Pools:
    perception: ThreadPoolExecutor
    asr: ThreadPoolExecutor
    llm: ThreadPoolExecutor
    tts: ThreadPoolExecutor

    @classmethod
    def create(cls, workers: int) -> "Pools":
        mk = lambda name, n: ThreadPoolExecutor(n, thread_name_prefix=name)  # noqa: E731
        return cls(mk("perception", max(2, workers)), mk("asr", workers), mk("llm", workers),
                   mk("tts", workers))

    def shutdown(self) -> None:
        for pool in (self.perception, self.asr, self.llm, self.tts):
            pool.shutdown(wait=False, cancel_futures=True)


class Connection:
    def __init__(self, ws, session: Session, models, pools: Pools, queue_size: int = 64,
                 clock=time.monotonic):
        self.ws, self.session, self.models, self.pools = ws, session, models, pools
        self.clock = clock
        self.loop = asyncio.get_running_loop()
        self._perceiver = None  # made on first use: the flatten pipeline needs none
        self.out_q: asyncio.Queue = asyncio.Queue(queue_size)
        self.perc_q: asyncio.Queue = asyncio.Queue(queue_size)
        self.asr_q: asyncio.Queue = asyncio.Queue(queue_size * 4)
        self.tts_q: asyncio.Queue = asyncio.Queue(queue_size)
        self.flat_q: asyncio.Queue = asyncio.Queue(queue_size)
        self.duplex_q: asyncio.Queue = asyncio.Queue(queue_size)
        self.duplex_sid: str | None = None
        self.wake = asyncio.Event()
        self.drained = asyncio.Event()
        self.cancels: dict[int, threading.Event] = {}
        self.tasks: set[asyncio.Task] = set()
        self.futures: set[asyncio.Future] = set()  # thread jobs, awaited on close
        self.channels: set[ThreadChannel] = set()  # their result channels
        self.closing = False

    # ------------------------------------------------------------ lifecycle
    async def run(self) -> None:
        self.session.open(self.clock())
        for coro, name in ((self._dispatcher(), "dispatch"), (self._writer(), "write"),
                           (self._perception(), "perception"), (self._asr(), "asr"),
                           (self._tts(), "tts"), (self._ticker(), "tick"),
                           (self._flatten(), "flatten"), (self._duplex(), "duplex")):
            self._spawn(coro, name)
        self.wake.set()
        try:
            async for message in self.ws:
                now = self.clock()
                if isinstance(message, bytes):
                    self.session.receive_bytes(message, now)
                else:
                    self.session.receive_text(message, now)
                self.wake.set()
                if len(self.session._actions) > MAX_BACKLOG:
                    self.drained.clear()
                    await self.drained.wait()
        finally:
            await self.close()

    def _spawn(self, coro, name: str) -> asyncio.Task:
        task = self.loop.create_task(coro, name=f"{self.session.id}:{name}")
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None and not self.closing:
            log.error("%s failed", task.get_name(), exc_info=task.exception())

    async def close(self) -> None:
        """Stop everything this connection started; nothing outlives it."""
        if self.closing:
            return
        self.closing = True
        self.session.close(self.clock())
        for ev in self.cancels.values():
            ev.set()
        for chan in self.channels:
            chan.abandoned.set()
        current = asyncio.current_task()
        tasks = [t for t in self.tasks if t is not current]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.futures:  # thread jobs see their cancel events and return promptly
            await asyncio.wait(list(self.futures), timeout=10)
        if self.duplex_sid is not None:  # the duplex engine forgets this conversation
            await self.loop.run_in_executor(self.pools.llm, self.models.llm.close, self.duplex_sid)

    def _channel(self, size: int) -> ThreadChannel:
        chan = ThreadChannel(self.loop, size)
        if self.closing:
            chan.abandoned.set()
        self.channels.add(chan)
        return chan

    def _offload(self, pool, fn, *args) -> asyncio.Future:
        fut = self.loop.run_in_executor(pool, fn, *args)
        self.futures.add(fut)
        fut.add_done_callback(self.futures.discard)
        return fut

    # ------------------------------------------------------------ routing
    async def _dispatcher(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            while actions := self.session.drain():
                for action in actions:
                    await self._route(action)
            self.drained.set()

    async def _route(self, a) -> None:
        if isinstance(a, A.SendEvent):
            await self.out_q.put(json.dumps(a.event))
        elif isinstance(a, A.SendAudio):
            await self.out_q.put(a.pcm)
        elif isinstance(a, A.Perceive):
            await self.perc_q.put(a)
        elif isinstance(a, (A.AsrStart, A.AsrFeed, A.AsrFinish, A.AsrCancel)):
            await self.asr_q.put(a)
        elif isinstance(a, A.Respond):
            self.cancels[a.gen] = threading.Event()
            self._spawn(self._llm(a, self.cancels[a.gen]), f"llm{a.gen}")
        elif isinstance(a, A.Synthesize):
            self.cancels.setdefault(a.gen, threading.Event())
            await self.tts_q.put(a)
        elif isinstance(a, A.Cancel):
            ev = self.cancels.pop(a.gen, None)
            if ev is not None:
                ev.set()
        elif isinstance(a, A.FlattenStep):
            await self.flat_q.put(a)
        elif isinstance(a, (A.DuplexTick, A.DuplexRollback)):
            await self.duplex_q.put(a)
        elif isinstance(a, A.Close):
            await self.ws.close(a.code, a.reason)

    def _stale(self, gen: int) -> bool:
        r = self.session.response
        return r is None or r.gen != gen

    async def _drain(self, chan: ThreadChannel):
        try:
            async for item in chan:
                yield item
        finally:
            self.channels.discard(chan)

    # ------------------------------------------------------------ workers
    async def _writer(self) -> None:
        while True:
            await self.ws.send(await self.out_q.get())

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self.session.tick(self.clock())
            self.wake.set()

    @property
    def perceiver(self):
        if self._perceiver is None:
            self._perceiver = self.models.perceiver()
        return self._perceiver

    async def _perception(self) -> None:
        while True:
            a: A.Perceive = await self.perc_q.get()
            try:
                frames = await self._offload(self.pools.perception, self.perceiver.process,
                                             a.audio, a.first_frame, a.agent_active)
            except Exception as e:  # a broken VAD must not kill the session
                log.exception("perception failed")
                self.session._error("perception_failed", f"voice activity detection failed: {e}",
                                    "server_error")
            else:
                self.session.on_frames(frames, self.clock())
            self.wake.set()

    async def _asr(self) -> None:
        streams: dict[str, object] = {}
        asr = self.models.asr
        while True:
            a = await self.asr_q.get()
            # Coalesce queued audio of the same item: one decode for many frames
            # when recognition runs behind real time.
            while isinstance(a, A.AsrFeed) and not self.asr_q.empty():
                nxt = self.asr_q.get_nowait()
                if isinstance(nxt, A.AsrFeed) and nxt.item_id == a.item_id:
                    a = A.AsrFeed(a.item_id, np.concatenate([a.audio, nxt.audio]))
                    continue
                await self._asr_step(asr, streams, a)
                a = nxt
            await self._asr_step(asr, streams, a)
            self.wake.set()

    async def _asr_step(self, asr, streams: dict, a) -> None:
        pool, item = self.pools.asr, a.item_id
        try:
            if isinstance(a, A.AsrStart):
                streams[item] = await self._offload(pool, asr.stream, self.models.cfg.asr.language)
            elif item not in streams:
                return  # its start failed or it was cancelled
            elif isinstance(a, A.AsrFeed):
                partial = await self._offload(pool, streams[item].feed, a.audio)
                if partial is not None:
                    self.session.on_asr_partial(item, partial, self.clock())
            elif isinstance(a, A.AsrFinish):
                text = await self._offload(pool, streams.pop(item).finish)
                self.session.on_asr_final(item, text, self.clock())
            elif isinstance(a, A.AsrCancel):
                await self._offload(pool, streams.pop(item).finish)  # frees the decoder
        except Exception as e:
            log.exception("ASR failed")
            streams.pop(item, None)
            self.session.on_asr_error(item, str(e) or type(e).__name__, self.clock())

    async def _llm(self, a: A.Respond, cancel: threading.Event) -> None:
        chan = self._channel(64)
        llm, max_tokens = self.models.llm, self.session.cfg.llm.max_new_tokens

        def work():
            try:
                for delta in llm.generate(a.messages, cancel=cancel, max_new_tokens=max_tokens):
                    if cancel.is_set() or not chan.push(("delta", delta), cancel):
                        break
                else:
                    chan.push(("done", None), cancel)
            except Exception as e:  # reported on the loop, the session goes on
                log.exception("LLM failed")
                chan.push(("error", str(e) or type(e).__name__), cancel)
            finally:
                chan.close()

        self._offload(self.pools.llm, work)
        async for kind, value in self._drain(chan):
            now = self.clock()
            if kind == "delta":
                self.session.on_llm_delta(a.gen, value, now)
            elif kind == "done":
                self.session.on_llm_done(a.gen, now)
            else:
                self.session.on_llm_error(a.gen, value, now)
            self.wake.set()

    async def _tts(self) -> None:
        tts = self.models.tts
        while True:
            a: A.Synthesize = await self.tts_q.get()
            cancel = self.cancels.get(a.gen)
            if self._stale(a.gen) or cancel is None or cancel.is_set():
                continue  # a cancelled response's sentence: never synthesized
            chan = self._channel(16)

            def work(a=a, cancel=cancel, chan=chan):
                resample = StreamResampler(tts.sample_rate, a.rate, "HQ")
                try:
                    for chunk in tts.synthesize(a.text, voice=a.voice, cancel=cancel):
                        if cancel.is_set() or not chan.push(("audio", resample(chunk)), cancel):
                            return
                    chan.push(("audio", resample(np.zeros(0, np.float32), last=True)), cancel)
                    chan.push(("done", None), cancel)
                except Exception as e:
                    log.exception("TTS failed")
                    chan.push(("error", str(e) or type(e).__name__), cancel)
                finally:
                    chan.close()

            self._offload(self.pools.tts, work)
            async for kind, value in self._drain(chan):
                now = self.clock()
                if kind == "audio":
                    self.session.on_tts_audio(a.gen, a.seq, value, now)
                elif kind == "done":
                    self.session.on_tts_done(a.gen, a.seq, now)
                else:
                    self.session.on_tts_error(a.gen, a.seq, value, now)
                self.wake.set()

    async def _flatten(self) -> None:
        """The speech-text model: one step per 160 ms chunk, in order."""
        engine, stream, resample = self.models.flatten, None, None
        while True:
            a: A.FlattenStep = await self.flat_q.get()
            if stream is None:
                stream = engine.stream()
                resample = StreamResampler(engine.output_rate, a.rate, "HQ")
            try:
                out = await self._offload(self.pools.llm, stream.step, a.audio)
            except Exception as e:
                log.exception("speech-text model failed")
                self.session.on_flatten_error(a.index, str(e) or type(e).__name__, self.clock())
            else:
                self.session.on_flatten_output(a.index, resample(out.audio), out.text, self.clock())
            self.wake.set()

    async def _duplex(self) -> None:
        """Ticks and rollbacks of the time-sliced duplex LLM, in order."""
        engine = self.models.llm
        while True:
            a = await self.duplex_q.get()
            try:
                if self.duplex_sid is None:
                    instructions = a.instructions if isinstance(a, A.DuplexTick) else ""
                    self.duplex_sid = await self._offload(self.pools.llm, engine.open, instructions)
                if isinstance(a, A.DuplexRollback):
                    await self._offload(self.pools.llm, engine.rollback, self.duplex_sid,
                                        a.unspoken_chars)
                    continue
                r = await self._offload(self.pools.llm, lambda: engine.step(
                    self.duplex_sid, a.user_text, end_of_turn=a.end_of_turn))
            except Exception as e:
                log.exception("duplex LLM failed")
                if isinstance(a, A.DuplexTick):
                    self.session.on_tick_error(a.seq, str(e) or type(e).__name__, self.clock())
            else:
                self.session.on_tick_result(a.seq, r.text, r.state, self.clock())
            self.wake.set()
