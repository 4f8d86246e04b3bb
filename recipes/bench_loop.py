"""Benchmark of the talking loop: per-turn latency and the event loop's lag.

    python -m duplex.recipes.bench_loop --sessions 4 --turns 3
    duplex bench loop --sessions 4 --turns 3

Starts a server in-process (its own event-loop thread, `--profile test` by
default), has N clients speak real espeak-ng questions to it in real time,
and prints the per-turn latency breakdown reported by the server
(endpointing, ASR final, LLM first token, TTS first audio, total) together
with how late the server's event loop woke up while all of it ran. Model
time shows in the breakdown; our own overhead shows in the loop lag.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import threading

import numpy as np

QUESTIONS = ["what is the weather like in paris", "tell me a story about a dog",
             "how far away is the moon", "what should I cook tonight"]


def _speech(text: str, voice: str = "en-us") -> np.ndarray:
    from duplex.audio import resample
    from duplex.config import TTSConfig
    from duplex.models.tts_espeak import EspeakTTS

    tts = EspeakTTS(TTSConfig(engine="espeak", voice=voice))
    audio = np.concatenate(list(tts.synthesize(text)))
    return resample(audio, tts.sample_rate, 16000)


class _ServerThread:
    def __init__(self, cfg, models):
        from duplex.server.app import DuplexServer
        from duplex.server.loopmon import LoopLagMonitor

        self.loop = asyncio.new_event_loop()
        self.server = DuplexServer(cfg, models)
        self.monitor = LoopLagMonitor()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self._run(self.server.start("127.0.0.1", 0))
        self.loop.call_soon_threadsafe(self.monitor.start)
        self.url = f"ws://127.0.0.1:{self.server.port}/ws"

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def stop(self):
        self._run(self.monitor.stop())
        self._run(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)


async def _client(url: str, audio: np.ndarray):
    from duplex.clients.session_client import DuplexClient

    async with DuplexClient(url) as c:
        return await c.call(audio, 16000, tail_s=1.0)


def _summary(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    v = sorted(values)
    return {"n": len(v), "median": statistics.median(v),
            "p90": v[min(len(v) - 1, int(0.9 * len(v)))], "max": v[-1]}


def run(args) -> dict:
    from duplex.config import load_config
    from duplex.models.registry import load_models

    cfg = load_config(args.profile, args.config, args.set)
    cfg.server.max_sessions = max(cfg.server.max_sessions, args.sessions)
    models = load_models(cfg)
    gap = np.zeros(int(args.gap_s * 16000), np.float32)
    scripts = []
    for s in range(args.sessions):
        parts = []
        for k in range(args.turns):
            parts += [_speech(QUESTIONS[(s + k) % len(QUESTIONS)]), gap]
        scripts.append(np.concatenate(parts))
    srv = _ServerThread(cfg, models)
    try:
        async def main():
            return await asyncio.gather(*(_client(srv.url, a) for a in scripts))

        records = asyncio.run(main())
    finally:
        srv.stop()
    turns = [e for rec in records for _, e in rec.events
             if e.get("type") == "duplex.metrics" and e.get("kind") == "turn"]
    parts = ["endpointing", "asr_final", "llm_first_token", "tts_first_audio", "total"]
    latency = {p: _summary([t["latency_ms"][p] for t in turns if t["latency_ms"].get(p) is not None])
               for p in parts}
    return {"profile": args.profile, "sessions": args.sessions, "turns_spoken": args.sessions * args.turns,
            "turns_answered": len(turns), "latency_ms": latency,
            "loop_lag_ms": srv.monitor.summary_ms()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="duplex bench loop", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", type=int, default=4)
    p.add_argument("--turns", type=int, default=3)
    p.add_argument("--gap-s", type=float, default=4.0, help="silence after each question")
    p.add_argument("--profile", default="test")
    p.add_argument("--config")
    p.add_argument("--set", action="append", default=[])
    p.add_argument("--json", action="store_true", help="print JSON only")
    args = p.parse_args(argv)
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['sessions']} sessions x {args.turns} turns, profile {result['profile']}: "
          f"{result['turns_answered']}/{result['turns_spoken']} turns answered")
    print(f"{'latency (ms)':<18}{'median':>8}{'p90':>8}{'max':>8}")
    for name, s in result["latency_ms"].items():
        if s.get("n"):
            print(f"{name:<18}{s['median']:>8.0f}{s['p90']:>8.0f}{s['max']:>8.0f}")
    lag = result["loop_lag_ms"]
    print(f"event-loop lag (ms): median {lag.get('median')}, p99 {lag.get('p99')}, "
          f"max {lag.get('max')} over {lag.get('n')} wake-ups")
    return 0


if __name__ == "__main__":
    sys.exit(main())
