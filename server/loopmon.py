"""Measures how late the event loop wakes up: the cost of our own code.

A task asks to sleep `interval` and records how much later it woke. Model
work runs in threads, so large lags mean something blocks the loop.
"""
from __future__ import annotations

import asyncio
import time


class LoopLagMonitor:
    def __init__(self, interval: float = 0.01):
        self.interval = interval
        self.lags: list[float] = []
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag-monitor")

    async def _run(self) -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(self.interval)
            self.lags.append(max(0.0, time.perf_counter() - t0 - self.interval))

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def summary_ms(self) -> dict:
        if not self.lags:
            return {"n": 0}
        lags = sorted(self.lags)
        pick = lambda q: round(1000 * lags[min(len(lags) - 1, int(q * len(lags)))], 3)  # noqa: E731
        return {"n": len(lags), "median": pick(0.5), "p99": pick(0.99),
                "max": round(1000 * lags[-1], 3)}
