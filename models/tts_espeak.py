"""TTS with the espeak-ng program (Debian package espeak-ng).

Each call runs `espeak-ng --stdout` and streams its WAV output as it is
produced, in ~50 ms chunks; the process is killed as soon as `cancel` is set
or the consumer stops iterating. Text goes through stdin, so text starting
with "-" is never read as an option.
"""
from __future__ import annotations

import shutil
import struct
import subprocess
import threading
from collections.abc import Iterator

import numpy as np

from duplex.config import TTSConfig
from duplex.errors import ModelUnavailable

BASE_WPM = 175  # espeak-ng's default speed; cfg.speed scales it
MAX_TEXT_BYTES = 32_000  # stdin is written before stdout is read: stay under the pipe buffer


class _WavStream:
    """Reads a WAV header then PCM16 samples from a pipe."""

    def __init__(self, pipe):
        self.pipe = pipe

    def _exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            part = self.pipe.read(n - len(data))
            if not part:
                break
            data += part
        return data

    def header(self) -> int | None:
        """Parse RIFF/fmt/data headers; the sample rate, or None if the stream ended."""
        riff = self._exact(12)
        if len(riff) < 12:
            return None
        if riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
            raise RuntimeError("espeak-ng did not write a WAV stream")
        rate = None
        while True:
            head = self._exact(8)
            if len(head) < 8:
                return None
            tag, size = head[:4], struct.unpack("<I", head[4:])[0]
            if tag == b"data":
                return rate
            body = self._exact(size)
            if tag == b"fmt ":
                channels, rate, _, _, bits = struct.unpack("<HIIHH", body[2:16])
                if channels != 1 or bits != 16:
                    raise RuntimeError(f"espeak-ng wrote {channels} channels of {bits} bits; expected mono 16")


class EspeakTTS:
    """TTS engine: `synthesize(text)` yields float32 chunks at `sample_rate` (22050 Hz)."""

    name = "espeak-ng"

    def __init__(self, cfg: TTSConfig):
        self.exe = shutil.which("espeak-ng")
        if self.exe is None:
            raise ModelUnavailable("tts", "espeak-ng", "the espeak-ng program is not installed",
                                   "install it (apt install espeak-ng / brew install espeak-ng) or "
                                   "use tts.engine=piper")
        if cfg.speed <= 0:
            raise ValueError(f"tts.speed must be > 0, got {cfg.speed}")
        self.cfg = cfg
        self.voice = cfg.voice or "en-us"
        self.wpm = int(min(max(round(BASE_WPM * cfg.speed), 80), 500))  # espeak-ng's usable range
        # One short synthesis finds the output rate and checks the voice now, not mid-dialogue.
        proc, self.sample_rate = self._start(".", self.voice)
        self._stop(proc)

    def synthesize(self, text: str, *, voice: str | None = None,
                   cancel: threading.Event | None = None) -> Iterator[np.ndarray]:
        """Stream speech for `text`; `voice` is an espeak-ng voice name (e.g. en-us, en-gb+f3)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a string, got {type(text).__name__}")
        if len(text.encode("utf-8")) > MAX_TEXT_BYTES:
            raise ValueError(f"text is too long for one synthesis call (> {MAX_TEXT_BYTES} bytes); "
                             "split it into sentences")
        if not text.strip():
            return iter(())
        return self._stream(text, voice or self.voice, cancel)

    def _start(self, text: str, voice: str) -> tuple[subprocess.Popen, int]:
        """Start espeak-ng on `text`; the process (stdout just past the WAV header) and its rate."""
        proc = subprocess.Popen([self.exe, "-v", voice, "-s", str(self.wpm), "-b", "1", "--stdout"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            proc.stdin.write(text.encode("utf-8"))
            proc.stdin.close()
            rate = _WavStream(proc.stdout).header()
            if rate is None:
                err = proc.stderr.read().decode(errors="replace").strip()
                raise RuntimeError(f"espeak-ng failed for voice {voice!r}: {err or 'no audio'}")
        except BaseException:
            self._stop(proc)
            raise
        return proc, rate

    @staticmethod
    def _stop(proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            pipe.close()

    def _stream(self, text: str, voice: str, cancel: threading.Event | None) -> Iterator[np.ndarray]:
        proc, rate = self._start(text, voice)
        if rate != self.sample_rate:
            self._stop(proc)
            raise RuntimeError(f"espeak-ng voice {voice!r} outputs {rate} Hz, not {self.sample_rate} Hz")
        chunk_bytes = 2 * (rate // 20)  # 50 ms
        carry = b""
        try:
            while cancel is None or not cancel.is_set():
                data = proc.stdout.read1(chunk_bytes)
                if not data:
                    break
                data, carry = carry + data, b""
                if len(data) % 2:
                    data, carry = data[:-1], data[-1:]
                if data and (cancel is None or not cancel.is_set()):
                    yield np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
        finally:
            self._stop(proc)
