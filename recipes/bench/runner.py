"""Runs benchmark samples against a server and scores each one.

Two backends play an input to a fresh session and return its `CallRecord`:
- `SocketBackend`: a real WebSocket server (`--url`), streamed in real time
  by `DuplexClient`;
- `InProcessBackend`: the same session core on a virtual clock
  (`VirtualRunner`, real models), much faster than real time, with the same
  turn-taking decisions.

Each input is followed by `tail_s` of silence so the agent's last words are
not cut before they are placed; scoring then keeps what falls inside the
input, as FDB's `output.wav` (as long as the input) would.
"""
from __future__ import annotations

import asyncio
import concurrent.futures as cf
from collections.abc import Callable

import numpy as np

from duplex.bench import metrics as M
from duplex.bench.timeline import AgentTimeline, agent_timeline, turn_decisions
from duplex.record import CallRecord

from .fdb import Sample


class InProcessBackend:
    """Virtual-clock sessions with the real models of a config."""

    def __init__(self, cfg, models, model_time: str = "measured", tail_s: float = 3.0):
        self.cfg, self.models, self.model_time, self.tail_s = cfg, models, model_time, tail_s
        self.model_names = models.names
        self.describe = f"in-process (virtual clock, model time {model_time}, profile {cfg.profile})"

    def run(self, audio: np.ndarray, rate: int) -> CallRecord:
        from duplex.server.virtual import VirtualRunner

        return VirtualRunner(self.cfg, self.models, self.model_time, tail_s=self.tail_s).run(audio, rate)

    def run_many(self, inputs: list[tuple[np.ndarray, int]], concurrency: int,
                 done: Callable[[], None]) -> list[CallRecord]:
        # Threads share the models; with several, measured model time includes their contention.
        with cf.ThreadPoolExecutor(max(1, concurrency)) as pool:
            futures = [pool.submit(self.run, a, r) for a, r in inputs]
            for _ in cf.as_completed(futures):
                done()
            return [f.result() for f in futures]


class SocketBackend:
    """A running server at `url`, one connection per sample, real-time streaming."""

    def __init__(self, url: str, token: str | None = None, tail_s: float = 3.0,
                 open_timeout: float = 10.0):
        if not url.startswith(("ws://", "wss://")):
            raise ValueError(f"--url must be a ws:// or wss:// address, got {url!r}")
        self.url, self.token, self.tail_s, self.open_timeout = url, token, tail_s, open_timeout
        self.model_names: dict | None = None
        self.describe = f"socket {url} (real time)"

    async def arun(self, audio: np.ndarray, rate: int) -> CallRecord:
        from duplex.clients.session_client import DuplexClient

        async with DuplexClient(self.url, self.token, self.open_timeout) as client:
            self.model_names = client.session.get("models")  # what the server says it runs
            return await client.call(audio, rate, realtime=True, tail_s=self.tail_s)

    def run(self, audio: np.ndarray, rate: int) -> CallRecord:
        return asyncio.run(self.arun(audio, rate))

    def run_many(self, inputs, concurrency: int, done: Callable[[], None]) -> list[CallRecord]:
        async def main():
            gate = asyncio.Semaphore(max(1, concurrency))

            async def one(audio, rate):
                async with gate:
                    rec = await self.arun(audio, rate)
                done()
                return rec

            return await asyncio.gather(*(one(a, r) for a, r in inputs))

        return asyncio.run(main())


def full_track(record: CallRecord) -> np.ndarray:
    """The agent track up to its last sound (may run past the input)."""
    pieces = record.timeline.pieces
    end = max([record.duration] + [p.end for p in pieces])
    return record.timeline.render(end)


def timeline_of(record: CallRecord, word_source=None) -> AgentTimeline:
    """Agent segments and words of a call; `word_source(track, rate)` replaces the
    event-derived words (an ASR pass, for servers that send no text)."""
    track = full_track(record)
    tl = agent_timeline(record.events, track, record.output_rate)
    if word_source is not None:
        tl.words = word_source(track, record.output_rate)
    return tl


def server_latencies(record: CallRecord) -> list[dict]:
    return [e["latency_ms"] for _, e in record.of_type("duplex.metrics")
            if e.get("kind") == "turn" and isinstance(e.get("latency_ms"), dict)]


def score(sample: Sample, tl: AgentTimeline, duration: float) -> dict:
    """Per-sample figures of the sample's task; `tl` is cropped to the input's length."""
    tl = tl.cropped(duration)
    words, segs = tl.words, tl.segments
    res: dict = {"task": sample.task, "id": sample.id, "duration_s": round(duration, 3),
                 "agent_text": " ".join(w.text for w in words),
                 "first_word_s": words[0].start if words else None}
    if sample.task == "pause":
        res["to"] = M.take_over(words)
    elif sample.task == "turn_taking":
        res["to"] = M.take_over(words)
        res["latency_s"] = M.turn_latency(words, sample.turn_end)
        signed = words[0].start - sample.turn_end if res["to"] else None
        res["eva_score"] = M.eva_turn_score(signed)
    elif sample.task in ("interruption", "overlap"):
        start, end = sample.user_span
        after = tl.words_between(end)
        res["to"] = M.take_over(after)
        res["latency_s"] = M.turn_latency(after, end)
        res["eva_score"] = M.eva_turn_score(after[0].start - end if res["to"] else None)
        res["stop_latency_s"] = M.stop_latency(segs, start)
        res["response_latency_s"] = M.restart_latency(segs, start, end)
        if sample.task == "overlap":
            res["category"] = sample.category
            t_stop = res["stop_latency_s"]
            res["stopped"] = None if t_stop is None else bool(start + t_stop < end)
    elif sample.task == "backchannel":
        bc = M.backchannel_stats(segs, words, duration)
        res.update(to=bc.to, backchannels=bc.count, frequency=bc.frequency,
                   backchannel_spans=[[round(a, 3), round(b, 3)] for a, b in bc.backchannels])
    else:
        raise ValueError(f"unknown task {sample.task!r}")
    return res


def run_samples(samples: list[Sample], backend, concurrency: int = 1,
                progress: Callable[[], None] = lambda: None) -> list[CallRecord]:
    """Play every sample's input; records in the samples' order."""
    inputs = [s.load_input() for s in samples]
    return backend.run_many(inputs, concurrency, progress)


def sample_result(sample: Sample, record: CallRecord, word_source=None) -> tuple[dict, AgentTimeline]:
    tl = timeline_of(record, word_source)
    res = score(sample, tl, sample.duration())
    res["decisions"] = turn_decisions(record.events)
    res["server_latency_ms"] = server_latencies(record)
    return res, tl
