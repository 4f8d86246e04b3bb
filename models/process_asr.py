"""Runs an ASR engine in child processes.

Some engines hold Python's GIL while they decode (pocketsphinx's bindings do:
a single call stalled the server's event loop by ~280 ms in
`recipes/bench_loop.py`). Threads cannot help there, so such an engine runs
in worker processes and its streams become small RPCs over a pipe. The
calling thread waits on the pipe with the GIL released.

A worker that dies is replaced at the next `stream()`; the calls in flight
fail with an error, which ends that turn only.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import os
import subprocess
import sys
import threading
from multiprocessing.connection import Connection

import numpy as np

from duplex.config import ASRConfig
from duplex.errors import ModelUnavailable


def _child_main() -> None:
    """Entry of the child: `python -m duplex.models.process_asr CONFIG_JSON`.

    The protocol runs on the original stdin/stdout; fd 1 is pointed at stderr
    so that nothing a library prints can corrupt it.
    """
    out_fd = os.dup(1)
    os.dup2(2, 1)
    conn_in, conn_out = Connection(0, writable=False), Connection(out_fd, readable=False)
    _serve(_Duplex(conn_in, conn_out), json.loads(sys.argv[1]))


class _Duplex:
    """Two one-way pipe connections used as one."""

    def __init__(self, rx: Connection, tx: Connection):
        self.rx, self.tx = rx, tx

    def send(self, obj) -> None:
        self.tx.send(obj)

    def recv(self):
        return self.rx.recv()


def _serve(conn, cfg_dict: dict) -> None:
    """Build the engine, then answer (op, stream id, payload) requests."""
    from .registry import build_asr_engine

    try:
        engine = build_asr_engine(ASRConfig(**cfg_dict))
    except ModelUnavailable as e:
        conn.send(("unavailable", (e.kind, e.name, e.reason)))
        return
    except Exception as e:  # noqa: BLE001 - reported to the parent
        conn.send(("err", f"{type(e).__name__}: {e}"))
        return
    conn.send(("ok", engine.name))
    streams: dict[int, object] = {}
    while True:
        try:
            op, sid, payload = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if op == "start":
                streams[sid] = engine.stream(payload)
                result = None
            elif op == "feed":
                result = streams[sid].feed(payload)
            elif op == "finish":
                stream = streams.pop(sid, None)
                result = stream.finish() if stream is not None else ""
            elif op == "stop":
                return
            else:
                raise ValueError(f"unknown op {op!r}")
            conn.send(("ok", result))
        except Exception as e:  # noqa: BLE001 - the stream fails, the worker lives on
            streams.pop(sid, None)
            conn.send(("err", f"{type(e).__name__}: {e}"))


class _Worker:
    def __init__(self, cfg: ASRConfig):
        # A fresh interpreter (not fork: the parent has threads and torch; not
        # multiprocessing's spawn: it would re-import the caller's __main__).
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "duplex.models.process_asr", json.dumps(dataclasses.asdict(cfg))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.conn = _Duplex(Connection(os.dup(self.proc.stdout.fileno()), writable=False),
                            Connection(os.dup(self.proc.stdin.fileno()), readable=False))
        self.proc.stdin.close()
        self.proc.stdout.close()
        self.lock = threading.Lock()
        self.streams = 0
        try:
            status, value = self.conn.recv()
        except EOFError:
            raise RuntimeError(f"the {cfg.engine} ASR worker process exited at start "
                               f"(code {self.proc.wait(5)}); see its stderr above") from None
        if status == "unavailable":
            raise ModelUnavailable(*value)
        if status != "ok":
            raise RuntimeError(f"ASR worker process failed to start: {value}")
        self.name = value

    def call(self, op: str, sid: int, payload=None):
        with self.lock:
            try:
                self.conn.send((op, sid, payload))
                status, value = self.conn.recv()
            except (EOFError, OSError, BrokenPipeError) as e:
                raise RuntimeError(f"ASR worker process died ({e or type(e).__name__})") from None
        if status != "ok":
            raise RuntimeError(value)
        return value

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        try:
            with self.lock:
                self.conn.send(("stop", 0, None))
        except Exception:
            pass
        try:
            self.proc.wait(2)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class ProcessStream:
    def __init__(self, owner: "ProcessASR", worker: _Worker, sid: int):
        self.owner, self.worker, self.sid = owner, worker, sid
        self.done = False

    def feed(self, audio: np.ndarray) -> str | None:
        return self.worker.call("feed", self.sid, np.asarray(audio, dtype=np.float32))

    def finish(self) -> str:
        if self.done:
            raise RuntimeError("this ASR stream is finished; start a new one with asr.stream()")
        self.done = True
        try:
            return self.worker.call("finish", self.sid)
        finally:
            self.owner._release(self.worker)


class ProcessASR:
    """An ASR engine (any `asr.engine`) hosted in `processes` child processes."""

    def __init__(self, cfg: ASRConfig, processes: int = 1):
        self.cfg = cfg
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._workers = [_Worker(cfg) for _ in range(max(1, processes))]
        self.name = self._workers[0].name

    def stream(self, language: str | None = None) -> ProcessStream:
        with self._lock:
            for i, w in enumerate(self._workers):
                if not w.alive:  # replace a crashed worker
                    self._workers[i] = _Worker(self.cfg)
            worker = min(self._workers, key=lambda w: w.streams)
            worker.streams += 1
        sid = next(self._ids)
        try:
            worker.call("start", sid, language)
        except Exception:
            self._release(worker)
            raise
        return ProcessStream(self, worker, sid)

    def _release(self, worker: _Worker) -> None:
        with self._lock:
            worker.streams -= 1

    def close(self) -> None:
        for w in self._workers:
            w.stop()


if __name__ == "__main__":
    _child_main()
