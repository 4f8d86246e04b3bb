"""The small interfaces every model engine implements.

Engines are chosen by config (`duplex.models.registry`) and always called
from worker threads, never from the event loop. Audio crossing these
interfaces is mono float32 in [-1, 1]; the rate is stated by each engine.
All of them are synchronous: the server runs them in threads, the
virtual-clock driver calls them directly.
"""
from __future__ import annotations

import threading
from typing import Iterator, Protocol, Sequence, runtime_checkable

import numpy as np

FRAME_MS = 20  # the turn-taking frame: 50 Hz, as in VAP
INPUT_RATE = 16_000  # rate of the audio the core works on
FRAME_SAMPLES = INPUT_RATE * FRAME_MS // 1000  # 320


@runtime_checkable
class VoiceActivityDetector(Protocol):
    """Streaming speech detector over 16 kHz audio.

    `process` takes any number of samples and returns one speech probability
    for each 20 ms frame completed by them (causal: a frame's probability uses
    no audio after it). State carries across calls until `reset`.
    """

    def process(self, audio: np.ndarray) -> np.ndarray: ...

    def reset(self) -> None: ...


@runtime_checkable
class ASRStream(Protocol):
    """One utterance being recognised while it is spoken."""

    def feed(self, audio: np.ndarray) -> str | None:
        """Add 16 kHz audio; return the updated partial transcript, or None
        when there is no new partial (engines may decode only every so often)."""
        ...

    def finish(self) -> str:
        """No more audio: return the final transcript (may be empty)."""
        ...


@runtime_checkable
class ASR(Protocol):
    name: str

    def stream(self, language: str | None = None) -> ASRStream: ...


@runtime_checkable
class LLM(Protocol):
    """A chat model that streams text and stops when `cancel` is set.

    `messages` are chat messages ({"role", "content"}) with the system prompt
    first. The iterator yields text deltas; it must check `cancel` between
    tokens and return promptly once set (barge-in)."""

    name: str

    def generate(
        self,
        messages: Sequence[dict],
        *,
        cancel: threading.Event,
        max_new_tokens: int | None = None,
    ) -> Iterator[str]: ...


@runtime_checkable
class TTS(Protocol):
    """Speech synthesis: text in, float32 mono chunks at `sample_rate` out.

    Chunks stream as they are made; `cancel` stops between chunks."""

    name: str
    sample_rate: int

    def synthesize(
        self, text: str, *, voice: str | None = None, cancel: threading.Event | None = None
    ) -> Iterator[np.ndarray]: ...


@runtime_checkable
class CodecEncoderStream(Protocol):
    """Streaming encoder of one audio stream (audio at the codec's rate).

    `encode` takes any number of samples and returns the codes of every frame
    they complete ([num_codebooks, n], n may be 0); the rest waits for the next
    call. Run over a signal in pieces, it gives the codes `Codec.encode` gives
    for the whole signal (exactly for Mimi; approximately for codecs that are
    not causal)."""

    def encode(self, audio: np.ndarray) -> np.ndarray: ...

    def reset(self) -> None: ...


@runtime_checkable
class CodecDecoderStream(Protocol):
    """Streaming decoder: codes [num_codebooks, n] in, n frames of audio out."""

    def decode(self, codes: np.ndarray) -> np.ndarray: ...

    def reset(self) -> None: ...


@runtime_checkable
class Codec(Protocol):
    """A neural audio codec (Mimi by default) for the speech-text models.

    codes are int64 arrays shaped [num_codebooks, frames]. `encode` pads the
    end of the audio to a whole frame (frames = ceil(samples / frame_size)),
    `decode` returns frames * frame_size samples."""

    sample_rate: int
    frame_rate: float
    num_codebooks: int
    codebook_size: int

    def encode(self, audio: np.ndarray) -> np.ndarray: ...

    def decode(self, codes: np.ndarray) -> np.ndarray: ...

    def encoder_stream(self) -> CodecEncoderStream: ...

    def decoder_stream(self) -> CodecDecoderStream: ...
