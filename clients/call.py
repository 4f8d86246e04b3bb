"""`duplex call`: stream a WAV file to a duplex server as a microphone would,
and record the conversation.

    duplex call IN.wav --out DIR [--url ws://127.0.0.1:8000/ws] [--token T]
                [--fast] [--tail S]

The file is sent in 20 ms frames in real time (or, with --fast, as fast as
the server takes it; see DuplexClient.call). The client plays the agent's
audio on a virtual timeline like a real player: it flushes on barge-in,
answers with conversation.item.truncate and reports its playback position.
After the file, silence streams on until the agent has finished and the
server has been quiet for S seconds (--tail, default 2; 60 s at most).

Writes (format: duplex.record.CallRecord):
  DIR/agent.wav         the agent's audio where it played, exactly as long as
                        IN.wav, silence elsewhere (Full-Duplex-Bench's output.wav)
  DIR/conversation.wav  stereo, user left, agent right, the whole call (tail included)
  DIR/events.jsonl      every server event with its arrival time (s, 0 = first sample)
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from duplex.record import CallRecord

from .explain import describe_close, open_or_explain
from .session_client import DuplexClient


class CallError(Exception):
    """A call could not be made; the message says why in plain words.
    `exit_code`: 2 for bad input, 1 for a server that could not be used."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Mono float32 audio of a sound file (channels are averaged)."""
    p = Path(path)
    if not p.is_file():
        raise CallError(f"no such file: {p}", 2)
    try:
        audio, rate = sf.read(p, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise CallError(f"cannot read {p} as audio: {e}", 2) from e
    if audio.shape[0] == 0:
        raise CallError(f"{p} holds no audio", 2)
    return audio.mean(axis=1), rate


class TailWatch:
    """Decides when a call may hang up: the file has been sent, `tail_s` has
    passed since, the session is back to listening (no turn or response in
    progress), the server's perception has caught up with the audio (it may lag
    with --fast) and it has sent nothing but turn-taking updates for `tail_s`."""

    def __init__(self, input_s: float, tail_s: float):
        self.input_s, self.tail_s = input_s, tail_s
        self.last_event = 0.0
        self.responding = False
        self.state: str | None = None  # the session's last duplex.state
        self.heard_ms: float | None = None  # the server's perception clock (duplex.turn)

    def on_event(self, event: dict, t: float) -> None:
        kind = event.get("type")
        if kind == "duplex.turn":
            self.heard_ms = max(self.heard_ms or 0.0, float(event.get("audio_ms", 0)))
            return
        self.last_event = t
        if kind == "response.created":
            self.responding = True
        elif kind == "response.done":
            self.responding = False
        elif kind == "duplex.state":
            self.state = event.get("state")

    def may_hang_up(self, now: float) -> bool:
        caught_up = self.heard_ms is None or self.heard_ms >= self.input_s * 1000 - 100
        idle = not self.responding and self.state in (None, "listening")
        return (now >= self.input_s + self.tail_s and idle and caught_up
                and now - self.last_event >= self.tail_s)


async def make_call(url: str, audio: np.ndarray, rate: int, *, token: str | None = None,
                    fast: bool = False, tail_s: float = 2.0,
                    max_tail_s: float = 60.0) -> tuple[CallRecord, str | None]:
    """Run one call; returns the record and why the server ended it early (or None).
    After the file, silence streams until TailWatch allows hanging up (at most
    `max_tail_s`)."""
    client = DuplexClient(url, token=token)
    failure = await open_or_explain(client, url)
    if failure:
        raise CallError(failure)
    watch = TailWatch(audio.size / rate, tail_s)
    client.on_event = watch.on_event
    hang_up = asyncio.Event()

    async def watch_tail():
        while not hang_up.is_set():
            await asyncio.sleep(0.05)
            if watch.may_hang_up(client.now()):
                hang_up.set()

    watcher = asyncio.create_task(watch_tail())
    try:
        record = await client.call(audio, rate, realtime=not fast,
                                   tail_s=max(tail_s, max_tail_s), stop=hang_up)
    finally:
        watcher.cancel()
        await client.close()
    ended = describe_close(client.close_code, client.close_reason) \
        if client.closed.is_set() and client.close_code != 1000 else None
    return record, ended


def write_call(record: CallRecord, out_dir: str | Path, input_seconds: float) -> Path:
    """Write the call directory; agent.wav is cut (or padded) to the input's length."""
    return record.write(out_dir, agent_s=input_seconds)


def summary(record: CallRecord) -> str:
    finals = [e["transcript"] for _, e in
              record.of_type("conversation.item.input_audio_transcription.completed")]
    done = [e["response"] for _, e in record.of_type("response.done")]
    statuses = [r.get("status") for r in done]
    lines = [(f"{len(done)} agent response(s): {statuses.count('completed')} completed, "
              f"{statuses.count('cancelled')} interrupted or cancelled, "
              f"{statuses.count('failed')} failed")]
    lines += [f"  you:   {t}" for t in finals]
    lines += [f"  agent: {o.get('transcript', '')}" for r in done for o in r.get("output", [])]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="duplex call", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="IN.wav", help="the user's side of the call (any rate, mono "
                   "or stereo: channels are averaged)")
    p.add_argument("--out", required=True, metavar="DIR", help="directory for the call's files")
    p.add_argument("--url", default="ws://127.0.0.1:8000/ws", help="the server's socket")
    p.add_argument("--token", default=os.environ.get("DUPLEX_TOKEN"),
                   help="the server's access token (env DUPLEX_TOKEN)")
    p.add_argument("--fast", action="store_true",
                   help="send the file as fast as the server takes it, not in real time")
    p.add_argument("--tail", type=float, default=2.0, metavar="S",
                   help="after the file, stream silence until the agent is done and the server has "
                   "been quiet this long (default 2)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.tail < 0:
        print("duplex call: --tail must be >= 0", file=sys.stderr)
        return 2
    try:
        audio, rate = read_wav(args.input)
        record, ended = asyncio.run(make_call(args.url, audio, rate, token=args.token,
                                              fast=args.fast, tail_s=args.tail))
    except CallError as e:
        print(f"duplex call: {e}", file=sys.stderr)
        return e.exit_code
    out = write_call(record, args.out, audio.size / rate)
    if not args.quiet:
        print(summary(record))
        print(f"wrote {out / 'agent.wav'}, {out / 'conversation.wav'}, {out / 'events.jsonl'}")
    if ended:
        print(f"duplex call: the call ended early: {ended}", file=sys.stderr)
        return 1
    return 0
