"""A bounded channel from a worker thread to the event loop.

Model threads (LLM tokens, TTS chunks) push results through it; a full
channel blocks the thread, not the loop (backpressure). A push gives up as
soon as the job is cancelled, so a thread never hangs on a dead connection.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import threading

_CLOSED = object()


class ThreadChannel:
    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int = 64):
        self.loop = loop
        self.queue: asyncio.Queue = asyncio.Queue(maxsize)
        self.abandoned = threading.Event()  # set when nobody will read any more

    def push(self, item, cancel: threading.Event | None = None) -> bool:
        """From a thread: put `item`, waiting while full. False if cancelled or abandoned."""
        if self.loop.is_closed() or self.abandoned.is_set():
            return False
        fut = asyncio.run_coroutine_threadsafe(self.queue.put(item), self.loop)
        while True:
            try:
                fut.result(timeout=0.05)
                return True
            except concurrent.futures.TimeoutError:
                if ((cancel is not None and cancel.is_set()) or self.abandoned.is_set()
                        or self.loop.is_closed()):
                    fut.cancel()
                    return False
            except (concurrent.futures.CancelledError, RuntimeError):
                return False

    def close(self) -> None:
        """From a thread: mark the end of the stream (the reader waits for it even
        after a cancel; only an abandoned channel drops it)."""
        self.push(_CLOSED)

    async def __aiter__(self):
        while True:
            item = await self.queue.get()
            if item is _CLOSED:
                return
            yield item

