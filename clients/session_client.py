"""An asyncio client for the duplex protocol, used by `duplex call`, the
benchmarks and the tests.

It streams audio in real time (or as fast as the server takes it), records
every server event with its arrival time, places agent audio on a playback
timeline, and behaves like a real player: it flushes on
`response.interrupted` and answers with `conversation.item.truncate`, and
reports its playback position every 100 ms.
"""
from __future__ import annotations

import asyncio
import json
import time
from typing import Awaitable, Callable

import numpy as np
from websockets.asyncio.client import connect

from duplex.audio import float_to_pcm16, pcm16_to_float, resample
from duplex.record import CallRecord

REPORT_S = 0.1


class DuplexClient:
    def __init__(self, url: str, token: str | None = None, open_timeout: float = 10.0):
        if token:
            url += ("&" if "?" in url else "?") + f"token={token}"
        self.url, self.open_timeout = url, open_timeout
        self.ws = None
        self.session: dict = {}
        self.record: CallRecord | None = None
        self._t0: float | None = None  # clock time of the first input sample
        self._reader: asyncio.Task | None = None
        self.on_event: Callable[[dict, float], Awaitable[None] | None] | None = None
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason = ""

    def now(self) -> float:
        return time.monotonic() - self._t0 if self._t0 is not None else 0.0

    async def __aenter__(self) -> "DuplexClient":
        await self.open()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def open(self, session_update: dict | None = None) -> dict:
        self.ws = await connect(self.url, open_timeout=self.open_timeout, max_size=None)
        first = json.loads(await asyncio.wait_for(self.ws.recv(), self.open_timeout))
        if first.get("type") != "session.created":
            err = ConnectionError(f"server did not open a session: {first}")
            err.event = first  # e.g. the `error` event sent before a 1008/1013 close
            raise err
        self.session = first["session"]
        if session_update:
            await self.send({"type": "session.update", "session": session_update})
        return self.session

    async def send(self, event: dict) -> None:
        await self.ws.send(json.dumps(event))

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    # ------------------------------------------------------------------
    async def call(self, audio: np.ndarray, rate: int, *, realtime: bool = True,
                   frame_ms: int = 20, tail_s: float = 2.0,
                   stop: asyncio.Event | None = None) -> CallRecord:
        """Stream `audio` (float32 mono), then silence until `tail_s` has passed with
        nothing left to send; return the record. `inject()` splices more audio in
        while it runs (a user reacting to the agent). Audio is resampled to the
        server's input rate (16 kHz unless changed).

        With `realtime=False` the audio goes as fast as the socket takes it, the
        client clock jumps ahead to the audio sent (so event times stay on the
        input's time line), and the tail silence is paced in real time so the
        server can end the turn and the agent's answer is heard and recorded.
        """
        self.in_rate = in_rate = self.session.get("input_sample_rate", 16000)
        self._pending = [resample(np.asarray(audio, dtype=np.float32), rate, in_rate)]
        self.record = CallRecord(np.zeros(0, np.float32), in_rate,
                                 self.session.get("output_sample_rate", 24000))
        self.record.add_event({"type": "session.created", "session": self.session}, 0.0)
        self._t0 = time.monotonic()
        self._reader = asyncio.create_task(self._read())
        hop = in_rate * frame_ms // 1000
        sent: list[np.ndarray] = []
        idle, i = 0, 0
        while idle < tail_s * in_rate:
            if stop is not None and stop.is_set() or self.closed.is_set():
                break
            chunk = self._take(hop)
            idle = 0 if chunk is not None else idle + hop
            if chunk is None:
                chunk = np.zeros(hop, np.float32)
            if realtime or idle:  # send each frame when it would have been recorded
                delay = (i + 1) * frame_ms / 1000 - self.now()
                if delay > 0:
                    await asyncio.sleep(delay)
            await self.ws.send(float_to_pcm16(chunk))
            if not realtime:  # the clock never runs behind the audio already sent
                self._t0 -= max(0.0, (i + 1) * frame_ms / 1000 - self.now())
                await asyncio.sleep(0)  # let the reader take events as they come
            sent.append(chunk)
            i += 1
            await self._report()
        self.record.input_audio = np.concatenate(sent) if sent else np.zeros(0, np.float32)
        return self.record

    def inject(self, audio: np.ndarray, rate: int | None = None) -> None:
        """Send `audio` next, ahead of whatever is still queued."""
        audio = np.asarray(audio, dtype=np.float32)
        if rate is not None:
            audio = resample(audio, rate, self.in_rate)
        self._pending.insert(0, audio)

    def _take(self, n: int) -> np.ndarray | None:
        out, need = [], n
        while need and self._pending:
            head = self._pending[0]
            out.append(head[:need])
            need -= out[-1].size
            if head.size <= out[-1].size:
                self._pending.pop(0)
            else:
                self._pending[0] = head[out[-1].size:]
        if not out or sum(a.size for a in out) == 0:
            return None
        chunk = np.concatenate(out)
        return np.pad(chunk, (0, n - chunk.size))

    async def _report(self) -> None:
        rec = self.record
        rid = rec.timeline.response_id
        if rid is None or self.now() - getattr(self, "_last_report", -1.0) < REPORT_S:
            return
        self._last_report = self.now()
        played = rec.timeline.played_s(self.now(), rid) * 1000
        if played > 0:
            await self.send({"type": "output_audio_buffer.playback", "response_id": rid,
                             "played_ms": round(played, 1)})

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                t = self.now()
                if isinstance(message, bytes):
                    self.record.add_audio(pcm16_to_float(message), t)
                    continue
                event = json.loads(message)
                self.record.add_event(event, t)
                if event.get("type") == "response.interrupted":
                    # The timeline has flushed what was unplayed; say what was heard.
                    played = self.record.timeline.played_s(t, event.get("response_id")) * 1000
                    await self.send({"type": "conversation.item.truncate",
                                     "item_id": event.get("item_id"), "content_index": 0,
                                     "audio_end_ms": round(played, 1)})
                if self.on_event is not None:
                    res = self.on_event(event, t)
                    if asyncio.iscoroutine(res):
                        await res
        except Exception:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.close_reason = self.ws.close_reason or ""
            self.closed.set()

    async def wait_for(self, type_: str, timeout: float = 10.0, after: float = -1.0) -> dict:
        """Wait until an event of `type_` arrives (after client time `after`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, ev in self.record.events:
                if ev.get("type") == type_ and t > after:
                    return ev
            if self.closed.is_set():
                break
            await asyncio.sleep(0.02)
        raise TimeoutError(f"no {type_} event within {timeout} s")
