"""Runs a session on a virtual clock: the same core, no socket, no waiting.

A discrete-event loop feeds the input in 20 ms frames at their audio times,
executes the session's actions with the real models, and emulates a client
(playback timeline, flush on interruption, playback reports, truncation).
Each pipeline stage is a FIFO worker; a model call occupies its worker for
its measured cost (`model_time="measured"`) or for no time (`"zero"`), and
its result reaches the session when the call would have finished. So a
benchmark runs faster than real time and the turn-taking decisions are the
same as over a real socket.
"""
from __future__ import annotations

import heapq
import itertools
import json
import threading
import time
from collections import deque
from typing import Callable, Iterator

import numpy as np

from duplex import actions as A
from duplex.audio import StreamResampler, float_to_pcm16, pcm16_to_float, resample
from duplex.config import Config
from duplex.record import CallRecord

REPORT_S = 0.1  # the emulated client reports its playback position this often


class _Job:
    def __init__(self, steps: Iterator, deliver: Callable, done: Callable | None = None,
                 error: Callable | None = None, cancel: threading.Event | None = None):
        self.steps, self.deliver, self.done, self.error = steps, deliver, done, error
        self.cancel = cancel


class _Worker:
    """One pipeline stage: runs jobs step by step, in order, on virtual time."""

    def __init__(self, sim: "VirtualRunner"):
        self.sim, self.jobs, self.busy = sim, deque(), False

    def submit(self, job: _Job) -> None:
        self.jobs.append(job)
        if not self.busy:
            self.busy = True
            self.sim.at(self.sim.now, self._next)

    def _next(self) -> None:
        while self.jobs:
            job = self.jobs[0]
            if job.cancel is not None and job.cancel.is_set():
                self.jobs.popleft()
                continue
            t0 = time.perf_counter()
            try:
                result = next(job.steps)
            except StopIteration:
                self.jobs.popleft()
                cost = self.sim.cost(time.perf_counter() - t0)
                if job.done:
                    self.sim.at(self.sim.now + cost, job.done)
                continue
            except Exception as e:  # a model failure ends the job, not the run
                self.jobs.popleft()
                if job.error:
                    self.sim.at(self.sim.now, lambda e=e, job=job: job.error(str(e) or type(e).__name__))
                continue
            finish = self.sim.now + self.sim.cost(time.perf_counter() - t0)
            self.sim.at(finish, lambda r=result, job=job: job.deliver(r))
            self.sim.at(finish, self._next)
            return
        self.busy = False


class VirtualRunner:
    def __init__(self, cfg: Config, models, model_time: str = "measured", frame_ms: int = 20,
                 tail_s: float = 0.0):
        if model_time not in ("measured", "zero"):
            raise ValueError("model_time is 'measured' or 'zero'")
        self.cfg, self.models, self.model_time = cfg, models, model_time
        self.frame_ms, self.tail_s = frame_ms, tail_s
        self.now = 0.0
        self._heap: list = []
        self._seq = itertools.count()

    def cost(self, seconds: float) -> float:
        return seconds if self.model_time == "measured" else 0.0

    def at(self, t: float, fn: Callable) -> None:
        heapq.heappush(self._heap, (t, next(self._seq), fn))

    # ------------------------------------------------------------------
    def run(self, audio: np.ndarray, rate: int, session_update: dict | None = None) -> CallRecord:
        """Play `audio` (float32 mono at `rate`) to a fresh session; return the call record."""
        audio = np.asarray(audio, dtype=np.float32)
        self.session = s = self.models.new_session("sess_virtual")
        self.record = CallRecord(audio, rate, s.output_rate)
        self.perceiver = self.models.perceiver() if self.models.flatten is None else None
        self.flatten = None
        self.workers = {k: _Worker(self) for k in ("perception", "asr", "llm", "tts", "flatten")}
        self.duplex_sid = None
        self.asr_streams: dict = {}
        self.cancels: dict[int, threading.Event] = {}
        self._last_report = 0.0
        s.open(0.0)
        if session_update:
            s.receive_text(json.dumps({"type": "session.update", "session": session_update}), 0.0)
        if rate != s.input_rate:
            s.receive_text(json.dumps({"type": "session.update",
                                       "session": {"input_sample_rate": rate}}), 0.0)
        self._execute()
        total = audio.size / rate + self.tail_s
        step = self.frame_ms / 1000
        hop = int(round(rate * step))
        n_frames = int(np.ceil(total / step))
        for i in range(n_frames):
            chunk = audio[i * hop:(i + 1) * hop]
            if chunk.size < hop:  # the client keeps streaming silence after the file
                chunk = np.concatenate([chunk, np.zeros(hop - chunk.size, np.float32)])
            pcm = float_to_pcm16(chunk)
            self.at((i + 1) * step, lambda pcm=pcm: self._call(s.receive_bytes, pcm))
            self.at((i + 1) * step, self._tick)
        end = n_frames * step
        while self._heap and self._heap[0][0] <= end + 1e-9:
            self.now, _, fn = heapq.heappop(self._heap)
            fn()
        self._call(s.close)
        self._heap.clear()
        if self.duplex_sid is not None:
            self.models.llm.close(self.duplex_sid)
        return self.record

    def _call(self, method, *args) -> None:
        method(*args, self.now)
        self._execute()

    def _tick(self) -> None:
        s, tl = self.session, self.record.timeline
        if getattr(s, "response", None) is not None and self.now - self._last_report >= REPORT_S:
            self._last_report = self.now
            rid = s.response.id
            played = tl.played_s(self.now, rid) * 1000
            if played > 0:
                s.receive_text(json.dumps({"type": "output_audio_buffer.playback",
                                           "response_id": rid, "played_ms": played}), self.now)
        self._call(s.tick)

    # ------------------------------------------------------------------
    def _execute(self) -> None:
        for a in self.session.drain():
            self._route(a)

    def _route(self, a) -> None:
        s, now = self.session, self.now
        if isinstance(a, A.SendEvent):
            self.record.add_event(a.event, now)
            if a.event["type"] == "response.interrupted":  # the client flushed: tell what played
                played = self.record.timeline.played_s(now, a.event["response_id"]) * 1000
                msg = {"type": "conversation.item.truncate", "item_id": a.event["item_id"],
                       "content_index": 0, "audio_end_ms": played}
                self.at(now, lambda: self._call(s.receive_text, json.dumps(msg)))
        elif isinstance(a, A.SendAudio):
            self.record.add_audio(pcm16_to_float(a.pcm), now)
        elif isinstance(a, A.Perceive):
            steps = iter([lambda: self.perceiver.process(a.audio, a.first_frame, a.agent_active)])
            self.workers["perception"].submit(_Job(
                (f() for f in steps), lambda frames: self._call(s.on_frames, frames)))
        elif isinstance(a, (A.AsrStart, A.AsrFeed, A.AsrFinish, A.AsrCancel)):
            self._route_asr(a)
        elif isinstance(a, A.Respond):
            cancel = self.cancels.setdefault(a.gen, threading.Event())
            gen = self.models.llm.generate(a.messages, cancel=cancel,
                                           max_new_tokens=self.cfg.llm.max_new_tokens)
            self.workers["llm"].submit(_Job(
                gen, lambda d: self._call(s.on_llm_delta, a.gen, d),
                done=lambda: self._call(s.on_llm_done, a.gen),
                error=lambda m: self._call(s.on_llm_error, a.gen, m), cancel=cancel))
        elif isinstance(a, A.Synthesize):
            cancel = self.cancels.setdefault(a.gen, threading.Event())
            self.workers["tts"].submit(_Job(
                self._tts_steps(a, cancel), lambda x: self._call(s.on_tts_audio, a.gen, a.seq, x),
                done=lambda: self._call(s.on_tts_done, a.gen, a.seq),
                error=lambda m: self._call(s.on_tts_error, a.gen, a.seq, m), cancel=cancel))
        elif isinstance(a, A.Cancel):
            self.cancels.setdefault(a.gen, threading.Event()).set()
        elif isinstance(a, A.FlattenStep):
            self._route_flatten(a)
        elif isinstance(a, (A.DuplexTick, A.DuplexRollback)):
            self._route_duplex(a)

    def _route_duplex(self, a) -> None:
        engine, s = self.models.llm, self.session

        def step():
            if self.duplex_sid is None:
                self.duplex_sid = engine.open(getattr(a, "instructions", ""))
            if isinstance(a, A.DuplexRollback):
                engine.rollback(self.duplex_sid, a.unspoken_chars)
                return None
            return engine.step(self.duplex_sid, a.user_text, end_of_turn=a.end_of_turn)

        def deliver(r):
            if r is not None:
                self._call(s.on_tick_result, a.seq, r.text, r.state)

        def error(message):
            if isinstance(a, A.DuplexTick):
                self._call(s.on_tick_error, a.seq, message)

        self.workers["llm"].submit(_Job((f() for f in [step]), deliver, error=error))

    def _route_flatten(self, a: A.FlattenStep) -> None:
        engine, s = self.models.flatten, self.session
        if self.flatten is None:
            self.flatten = (engine.stream(), StreamResampler(engine.output_rate, a.rate, "HQ"))
        stream, resampler = self.flatten

        def step():
            out = stream.step(a.audio)
            return resampler(out.audio), out.text

        self.workers["flatten"].submit(_Job(
            (f() for f in [step]), lambda r: self._call(s.on_flatten_output, a.index, *r),
            error=lambda m: self._call(s.on_flatten_error, a.index, m)))

    def _tts_steps(self, a: A.Synthesize, cancel: threading.Event):
        tts = self.models.tts
        resampler = StreamResampler(tts.sample_rate, a.rate, "HQ")
        for chunk in tts.synthesize(a.text, voice=a.voice, cancel=cancel):
            yield resampler(chunk)
        tail = resampler(np.zeros(0, np.float32), last=True)
        if tail.size:
            yield tail

    def _route_asr(self, a) -> None:
        s, streams, item = self.session, self.asr_streams, a.item_id
        asr = self.models.asr
        pending = getattr(self, "_feed", None)
        if isinstance(a, A.AsrFeed) and pending and pending[0] == item and not pending[2]:
            pending[1].append(a.audio)  # merged into the queued feed, as the server does
            return
        chunks: list = [a.audio] if isinstance(a, A.AsrFeed) else []
        state = [item, chunks, False]  # item, audio to feed, started
        if isinstance(a, A.AsrFeed):
            self._feed = state

        def step():
            state[2] = True
            if isinstance(a, A.AsrStart):
                streams[item] = asr.stream(self.cfg.asr.language)
                return None
            stream = streams.get(item)
            if stream is None:
                return None
            if isinstance(a, A.AsrFeed):
                return ("partial", stream.feed(np.concatenate(chunks)))
            streams.pop(item)
            text = stream.finish()
            return ("final", text) if isinstance(a, A.AsrFinish) else None

        def deliver(result):
            if result and result[0] == "partial" and result[1] is not None:
                self._call(s.on_asr_partial, item, result[1])
            elif result and result[0] == "final":
                self._call(s.on_asr_final, item, result[1])

        def error(message):
            streams.pop(item, None)
            self._call(s.on_asr_error, item, message)

        self.workers["asr"].submit(_Job((f() for f in [step]), deliver, error=error))


def run_file(cfg: Config, models, path: str, model_time: str = "measured",
             tail_s: float = 0.0) -> CallRecord:
    """Convenience: run a WAV file through a virtual-clock session."""
    import soundfile as sf

    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    return VirtualRunner(cfg, models, model_time, tail_s=tail_s).run(audio.mean(axis=1), rate)


__all__ = ["VirtualRunner", "run_file", "resample"]
