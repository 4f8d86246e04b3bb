"""The sound-card layer of `duplex talk`: microphone in, speaker out, via
sounddevice (PortAudio). It is the only part of `duplex talk` that touches
hardware, so tests stand a file-backed device in for it.

A device calls `on_input(block)` with mono float32 microphone audio at
`input_rate` and fills the speaker from `fill_output(n)` (mono float32 at
`output_rate`), both from PortAudio's callback thread. `finished` is set
when a device ends by itself (never, for a sound card).
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

import numpy as np

OnInput = Callable[[np.ndarray], None]
FillOutput = Callable[[int], np.ndarray]


class DeviceError(RuntimeError):
    """The sound device cannot be used; the message says why in plain words."""


class AudioDevice(Protocol):
    input_rate: int
    output_rate: int
    finished: threading.Event

    def start(self, on_input: OnInput, fill_output: FillOutput) -> None: ...

    def stop(self) -> None: ...


def _sounddevice():
    try:
        import sounddevice as sd
    except (ImportError, OSError) as e:  # OSError: the PortAudio library is missing
        raise DeviceError(f"sound devices are unavailable ({e}); install PortAudio "
                          "(apt install libportaudio2) and `pip install sounddevice`") from e
    return sd


def parse_device(value: str | None) -> int | str | None:
    """A device given on the command line: its index or part of its name."""
    if value is None or value == "":
        return None
    return int(value) if value.strip().isdigit() else value


def describe_devices() -> str:
    sd = _sounddevice()
    devices = sd.query_devices()
    if len(devices) == 0:
        return "no audio devices found"
    return str(devices)


class SoundDevice:
    """Full duplex on a microphone and a speaker (the defaults unless chosen)."""

    def __init__(self, input_device: int | str | None = None,
                 output_device: int | str | None = None, block_ms: int = 20):
        self._sd = _sounddevice()
        info_in = self._query(input_device, "input", "microphone")
        info_out = self._query(output_device, "output", "speaker")
        self.input_device, self.output_device = info_in["index"], info_out["index"]
        self.input_name, self.output_name = info_in["name"], info_out["name"]
        self.input_rate = int(info_in["default_samplerate"])
        self.output_rate = int(info_out["default_samplerate"])
        self.block_ms = block_ms
        self.finished = threading.Event()
        self._streams: list = []

    def _query(self, device: int | str | None, kind: str, what: str) -> dict:
        sd = self._sd
        try:
            return sd.query_devices(device, kind)
        except (ValueError, sd.PortAudioError) as e:
            which = f"{what} {device!r}" if device is not None else f"default {what}"
            raise DeviceError(f"cannot use the {which} ({e}); see `duplex talk --list-devices`"
                              ) from e

    def start(self, on_input: OnInput, fill_output: FillOutput) -> None:
        sd = self._sd

        def duplex(indata, outdata, frames, time, status):
            on_input(indata[:, 0].copy())
            outdata[:, 0] = fill_output(frames)

        def capture(indata, frames, time, status):
            on_input(indata[:, 0].copy())

        def play(outdata, frames, time, status):
            outdata[:, 0] = fill_output(frames)

        try:
            if self.input_rate == self.output_rate:  # one full-duplex stream
                self._streams = [sd.Stream(
                    device=(self.input_device, self.output_device), samplerate=self.input_rate,
                    blocksize=self.input_rate * self.block_ms // 1000, channels=1,
                    dtype="float32", latency="low", callback=duplex)]
            else:
                self._streams = [
                    sd.InputStream(device=self.input_device, samplerate=self.input_rate,
                                   blocksize=self.input_rate * self.block_ms // 1000, channels=1,
                                   dtype="float32", latency="low", callback=capture),
                    sd.OutputStream(device=self.output_device, samplerate=self.output_rate,
                                    blocksize=self.output_rate * self.block_ms // 1000, channels=1,
                                    dtype="float32", latency="low", callback=play)]
            for s in self._streams:
                s.start()
        except sd.PortAudioError as e:
            self.stop()
            raise DeviceError(f"cannot open the audio device: {e}") from e

    def stop(self) -> None:
        for s in self._streams:
            try:
                s.stop()
                s.close()
            except Exception:
                pass
        self._streams = []


def open_device(input_device: str | None, output_device: str | None) -> AudioDevice:
    return SoundDevice(parse_device(input_device), parse_device(output_device))
