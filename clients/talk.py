"""`duplex talk`: talk to a duplex server with this machine's microphone and speaker.

    duplex talk [--url ws://127.0.0.1:8000/ws] [--token T]
                [--input-device N|NAME] [--output-device N|NAME] [--list-devices]
                [--mute-while-speaking]

Full duplex: the microphone streams all the time, so you can interrupt the
agent by talking over it. With open speakers the agent hears itself through
the microphone and may interrupt itself; use headphones, or
--mute-while-speaking (half duplex: the microphone sends silence while the
agent is audible, so you cannot barge in). Ctrl-C ends the conversation.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

import numpy as np
from websockets.exceptions import ConnectionClosed

from duplex.audio import ACCEPTED_RATES, StreamResampler, float_to_pcm16, pcm16_to_float

from .audio_device import AudioDevice, DeviceError, describe_devices, open_device
from .explain import describe_close, open_or_explain
from .player import LivePlayer
from .session_client import REPORT_S, DuplexClient

FRAME_MS = 20
MUTE_HANGOVER_S = 0.3  # --mute-while-speaking: room echo dies away after the agent stops
ECHO_WARNING = ("note: open speakers echo into the microphone and the agent may interrupt "
                "itself. Use headphones, or --mute-while-speaking (then you cannot barge in).")


class Printer:
    """The transcript as it goes: your partials (on a terminal), finals, agent text."""

    def __init__(self, out=None):
        self.out = out or sys.stdout
        self.tty = self.out.isatty()
        self.partial = False  # a partial line is on screen
        self.agent_open = False  # an agent line is being written
        self.latency: int | None = None

    def _clear_partial(self) -> None:
        if self.partial:
            self.out.write("\r\033[K")
            self.partial = False

    def _end_agent(self, note: str = "") -> None:
        if self.agent_open:
            extra = (f"  (reply began {self.latency} ms after you stopped)"
                     if self.latency is not None else "")
            self.out.write(f"{note}{extra}\n")
            self.agent_open = False
            self.latency = None

    def finish(self) -> None:
        self._clear_partial()
        self._end_agent(" [hung up]")
        self.out.flush()

    def line(self, text: str) -> None:
        self._clear_partial()
        self._end_agent()
        self.out.write(text + "\n")
        self.out.flush()

    def on_event(self, ev: dict) -> None:
        kind = ev.get("type")
        if kind == "conversation.item.input_audio_transcription.delta":
            if self.tty and not self.agent_open:
                self.out.write(f"\r\033[K  you: {ev.get('transcript', '')}…")
                self.partial = True
        elif kind == "conversation.item.input_audio_transcription.completed":
            if ev.get("transcript"):
                self.line(f"  you: {ev['transcript']}")
        elif kind == "response.output_audio_transcript.delta":
            if not self.agent_open:
                self._clear_partial()
                self.out.write("agent:")
                self.agent_open = True
            self.out.write(ev.get("delta", ""))
        elif kind == "duplex.metrics" and ev.get("kind") == "turn":
            self.latency = (ev.get("latency_ms") or {}).get("total")
        elif kind == "output_audio_buffer.paused" and self.agent_open:
            self.out.write(" [held]")  # the agent stopped to hear a sound of yours
        elif kind == "response.interrupted":
            self._end_agent(" [you interrupted]")
        elif kind == "response.done":
            status = ev.get("response", {}).get("status")
            self._end_agent(" [failed]" if status == "failed" else "")
        elif kind == "error":
            err = ev.get("error", {})
            self.line(f"[server: {err.get('message', err.get('code'))}]")
        self.out.flush()


class Talk:
    """One conversation: microphone -> socket -> speaker, with barge-in handling."""

    def __init__(self, client: DuplexClient, device: AudioDevice, mute_while_speaking: bool,
                 printer: Printer):
        self.client, self.device, self.printer = client, device, printer
        self.mute_while_speaking = mute_while_speaking
        self.player = LivePlayer(device.output_rate)
        self.rid: str | None = None  # the response whose audio is arriving
        self.ready = asyncio.Event()
        self.server_rate = 24_000
        self._to_device: StreamResampler | None = None
        self._mic: asyncio.Queue[np.ndarray] = asyncio.Queue(maxsize=100)
        self._muted_until = 0.0

    # ---------------------------------------------------------- device thread
    def _on_input(self, block: np.ndarray) -> None:
        self._loop.call_soon_threadsafe(self._enqueue, block)

    def _enqueue(self, block: np.ndarray) -> None:
        if self._mic.full():  # the loop fell behind: drop the oldest audio
            self._mic.get_nowait()
        self._mic.put_nowait(block)

    # ---------------------------------------------------------- asyncio side
    async def run(self) -> str | None:
        """Talk until the device ends, the server closes or Ctrl-C; returns why it ended."""
        self._loop = asyncio.get_running_loop()
        session = self.client.session
        self._set_server_rate(session.get("output_sample_rate", 24_000))
        reader = asyncio.create_task(self._read())
        tasks = [reader]
        try:
            want = self.device.output_rate
            if want != self.server_rate and want in ACCEPTED_RATES:
                # Agent audio at the speaker's own rate: no resampling here.
                await self.client.send({"type": "session.update",
                                        "session": {"output_sample_rate": want}})
                try:
                    await asyncio.wait_for(self.ready.wait(), 10)
                except asyncio.TimeoutError:
                    pass  # keep the announced rate; we resample
            self.device.start(self._on_input, self.player.read)
            tasks += [asyncio.create_task(self._send_mic()), asyncio.create_task(self._report()),
                      asyncio.create_task(asyncio.to_thread(self.device.finished.wait))]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.device.stop()
            self.device.finished.set()  # ends the waiting thread
            for task in tasks[1:3]:
                task.cancel()
            await self.client.close()
            await asyncio.gather(*tasks, return_exceptions=True)
        return describe_close(self.client.close_code, self.client.close_reason)

    def _set_server_rate(self, rate: int) -> None:
        self.server_rate = rate
        self._to_device = StreamResampler(rate, self.device.output_rate)

    async def _send_mic(self) -> None:
        in_rate = self.client.session.get("input_sample_rate", 16_000)
        to_server = StreamResampler(self.device.input_rate, in_rate)
        hop = in_rate * FRAME_MS // 1000
        pending = np.zeros(0, np.float32)
        while True:
            block = await self._mic.get()
            pending = np.concatenate([pending, to_server(block)])
            while pending.size >= hop:
                frame, pending = pending[:hop], pending[hop:]
                if self.mute_while_speaking:
                    now = time.monotonic()
                    if self.player.active:
                        self._muted_until = now + MUTE_HANGOVER_S
                    if now < self._muted_until:
                        frame = np.zeros_like(frame)  # silence keeps the server's clock running
                try:
                    await self.client.ws.send(float_to_pcm16(frame))
                except ConnectionClosed:
                    return  # the reader sees the close and says why

    async def _report(self) -> None:
        """The playback position of the response being played, while it advances."""
        last: dict[str, float] = {}
        while True:
            await asyncio.sleep(REPORT_S)
            rid = self.rid
            played = self.player.played_ms(rid) if rid else 0.0
            if rid and played > last.get(rid, 0.0):
                last = {rid: played}
                await self.client.send({"type": "output_audio_buffer.playback",
                                        "response_id": rid, "played_ms": round(played, 1)})

    async def _read(self) -> None:
        try:
            async for message in self.client.ws:
                if isinstance(message, bytes):
                    if self.rid is not None:
                        self.player.push(self._to_device(pcm16_to_float(message)), self.rid)
                    continue
                try:
                    ev = json.loads(message)
                except ValueError:
                    continue
                await self._on_event(ev)
        except ConnectionClosed:
            pass
        finally:
            self.client.close_code = self.client.ws.close_code
            self.client.close_reason = self.client.ws.close_reason or ""

    async def _on_event(self, ev: dict) -> None:
        kind = ev.get("type")
        if kind == "session.updated":
            self._set_server_rate(ev["session"].get("output_sample_rate", self.server_rate))
            self.ready.set()
        elif kind == "error" and ev.get("error", {}).get("code") == "invalid_sample_rate":
            self.ready.set()  # keep the server's rate; we resample
        elif kind == "output_audio_buffer.started":
            self.rid = ev.get("response_id")
        elif kind == "response.output_audio.done":
            self.player.complete()
        elif kind == "output_audio_buffer.paused":
            self.player.pause()
        elif kind == "output_audio_buffer.resumed":
            self.player.resume()
        elif kind == "response.interrupted":
            rid = ev.get("response_id")
            played, _ = self.player.flush()  # drop every unplayed sample now
            if self.rid == rid:
                self.rid = None
            await self.client.send({
                "type": "conversation.item.truncate", "item_id": ev.get("item_id"),
                "content_index": 0,
                "audio_end_ms": round(played.get(rid, 0) * 1000 / self.player.rate, 1)})
        elif kind == "response.done":
            r = ev.get("response", {})
            if r.get("id") == self.rid and r.get("status") != "completed":
                self.rid = None
        self.printer.on_event(ev)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="duplex talk", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="ws://127.0.0.1:8000/ws", help="the server's socket")
    p.add_argument("--token", default=os.environ.get("DUPLEX_TOKEN"),
                   help="the server's access token (env DUPLEX_TOKEN)")
    p.add_argument("--input-device", metavar="N|NAME",
                   help="microphone: index or part of the name (default: the system's)")
    p.add_argument("--output-device", metavar="N|NAME",
                   help="speaker: index or part of the name (default: the system's)")
    p.add_argument("--list-devices", action="store_true", help="list audio devices and exit")
    p.add_argument("--mute-while-speaking", action="store_true",
                   help="half duplex for open speakers: send silence while the agent is audible")
    return p


async def _talk(args, device: AudioDevice, printer: Printer) -> int:
    client = DuplexClient(args.url, token=args.token)
    failure = await open_or_explain(client, args.url)
    if failure:
        print(f"duplex talk: {failure}", file=sys.stderr)
        return 1
    models = client.session.get("models", {})
    printer.line(f"connected to {args.url} ({', '.join(f'{k}: {v}' for k, v in models.items())})")
    printer.line("speak when you like; Ctrl-C ends the conversation")
    try:
        ended = await Talk(client, device, args.mute_while_speaking, printer).run()
    except DeviceError as e:
        print(f"duplex talk: {e}", file=sys.stderr)
        return 1
    finally:
        printer.finish()
    if ended:
        print(f"duplex talk: {ended}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.list_devices:
            print(describe_devices())
            return 0
        device = open_device(args.input_device, args.output_device)
    except DeviceError as e:
        print(f"duplex talk: {e}", file=sys.stderr)
        return 1
    printer = Printer()
    if args.mute_while_speaking:
        printer.line("half duplex: the microphone is muted while the agent speaks")
    else:
        print(ECHO_WARNING, file=sys.stderr)
    try:
        return asyncio.run(_talk(args, device, printer))
    except KeyboardInterrupt:
        printer.line("bye")
        return 0
