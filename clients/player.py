"""Live playback of agent audio for a sound device: a jitter-buffered FIFO.

The Python twin of the browser's playback worklet (clients/web/playback-worklet.js).
The asyncio side pushes agent audio tagged with its response id; the sound
device's callback thread pulls fixed-size blocks. A burst starts once
`jitter_ms` is buffered (or the response's audio is complete) and restarts
the same way after an underrun; `flush` drops everything unplayed at once
(barge-in) and says how much of each response was played; `pause` holds the
buffer until `resume`.
"""
from __future__ import annotations

import threading
from collections import deque

import numpy as np


class LivePlayer:
    def __init__(self, rate: int, jitter_ms: float = 60.0):
        if rate <= 0:
            raise ValueError(f"playback rate must be positive, got {rate}")
        self.rate = rate
        self.jitter = int(rate * jitter_ms / 1000)
        self._lock = threading.Lock()
        self._queue: deque[list] = deque()  # [response_id, samples, offset]
        self.buffered = 0  # samples queued, not yet played
        self.played: dict[str | None, int] = {}  # response id -> samples played
        self.played_out = 0  # samples of agent audio sent to the device
        self.playing = False
        self.paused = False
        self._complete = False

    def push(self, audio: np.ndarray, response_id: str | None) -> None:
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        if audio.size == 0:
            return
        with self._lock:
            self._queue.append([response_id, audio, 0])
            self.buffered += audio.size
            self._complete = False

    def complete(self) -> None:
        """All of the response's audio has arrived: play the tail without waiting."""
        with self._lock:
            self._complete = True

    def pause(self) -> None:
        with self._lock:
            self.paused = True

    def resume(self) -> None:
        with self._lock:
            self.paused = False

    def flush(self) -> tuple[dict[str | None, int], int]:
        """Drop all unplayed audio now; returns (played samples per response, dropped samples)."""
        with self._lock:
            dropped = self.buffered
            self._queue.clear()
            self.buffered = 0
            self.playing = self.paused = False
            return dict(self.played), dropped

    def played_ms(self, response_id: str | None) -> float:
        with self._lock:
            return self.played.get(response_id, 0) * 1000 / self.rate

    @property
    def active(self) -> bool:
        """Agent audio is playing or waiting to play."""
        return self.buffered > 0 or self.playing

    def read(self, n: int) -> np.ndarray:
        """The next `n` samples for the device (silence where there is nothing to play)."""
        out = np.zeros(n, dtype=np.float32)
        with self._lock:
            if (not self.playing and not self.paused and self.buffered
                    and (self.buffered >= self.jitter or self._complete)):
                self.playing = True
            if not self.playing or self.paused:
                return out
            i = 0
            while i < n and self._queue:
                head = self._queue[0]
                rid, audio, off = head
                k = min(n - i, audio.size - off)
                out[i:i + k] = audio[off:off + k]
                self.played[rid] = self.played.get(rid, 0) + k
                self.buffered -= k
                i += k
                if off + k >= audio.size:
                    self._queue.popleft()
                else:
                    head[2] = off + k
            self.played_out += i
            if i < n:
                self.playing = False  # underrun: refill the jitter buffer first
        return out
