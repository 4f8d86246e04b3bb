"""Streaming ASR with faster-whisper (CTranslate2).

`cfg.model` is a faster-whisper size name ("base.en"), a Hub id of a
CTranslate2-converted Whisper ("Systran/faster-whisper-base.en") or a local
CTranslate2 directory. Whisper is not a streaming model, so a stream buffers
the utterance and re-transcribes all of it each time `partial_interval_ms`
of new audio has arrived (greedy, no timestamps, no VAD, no conditioning on
previous text: partials must be cheap); `finish` decodes the whole
utterance once more with `cfg.beam_size`. Temperature fallback is off
(temperature 0 only) so a decode costs one pass, which keeps latency bounded.
"""
from __future__ import annotations

import os

import numpy as np

from duplex.config import ASRConfig
from duplex.errors import ModelUnavailable
from duplex.interfaces import INPUT_RATE
from duplex.models import hub
from duplex.models.inputs import mono_float32

CONVERT_HINT = (
    "download a CTranslate2 Whisper on a machine with network access (e.g. `hf download "
    "Systran/faster-whisper-base.en --local-dir DIR`), or convert a transformers checkpoint with "
    "`ct2-transformers-converter --model openai/whisper-base.en --output_dir DIR --copy_files "
    "tokenizer.json preprocessor_config.json`, then set asr.model=DIR"
)


def resolve_whisper(name: str) -> str:
    """Local CTranslate2 directory for a size name, Hub id or path."""
    from faster_whisper.utils import available_models, download_model

    if name not in available_models() and "/" not in name and hub.local_path("asr", name) is None:
        raise ModelUnavailable("asr", name, "it is neither a faster-whisper size name ("
                               + ", ".join(available_models()) + "), a Hub id (org/name) "
                               "nor an existing directory", CONVERT_HINT)
    path = hub.resolve("asr", name, lambda local: download_model(name, local_files_only=local),
                       hint=CONVERT_HINT)
    if not (path / "model.bin").is_file():
        raise ModelUnavailable("asr", name, f"{path} is not a CTranslate2 model directory (no model.bin)",
                               CONVERT_HINT)
    return str(path)


class WhisperStream:
    """One utterance: buffered audio, periodic partial re-decodes, final decode."""

    def __init__(self, engine: WhisperASR, language: str | None):
        self._engine, self.language = engine, language
        self._chunks: list[np.ndarray] = []
        self.samples = 0  # audio received so far
        self._decoded_at = 0  # `samples` at the last partial decode
        self.partial_decodes = 0
        self._partial = ""
        self._finished = False

    def _audio(self) -> np.ndarray:
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.float32)

    def feed(self, audio: np.ndarray) -> str | None:
        """Buffer audio; re-decode when `partial_interval_ms` of new audio has come in.

        Returns the partial when it changed, else None."""
        if self._finished:
            raise RuntimeError("this ASR stream is finished; start a new one with asr.stream()")
        audio = mono_float32(audio, "ASR feed")
        if audio.size == 0:
            return None
        self._chunks.append(audio)
        self.samples += audio.size
        if self.samples - self._decoded_at < self._engine.partial_samples:
            return None
        self._decoded_at = self.samples
        self.partial_decodes += 1
        text = self._engine.transcribe(self._audio(), self.language, beam_size=1)
        if text == self._partial:
            return None
        self._partial = text
        return text

    def finish(self) -> str:
        """The final transcript of everything fed (beam search with cfg.beam_size)."""
        if self._finished:
            raise RuntimeError("this ASR stream is already finished")
        self._finished = True
        audio = self._audio()
        self._chunks = []
        if audio.size == 0:
            return ""
        return self._engine.transcribe(audio, self.language, beam_size=self._engine.cfg.beam_size)

    def close(self) -> None:
        """Abandon the utterance."""
        self._finished, self._chunks = True, []


class WhisperASR:
    """ASR engine backed by one shared faster-whisper model (CTranslate2 is thread-safe)."""

    def __init__(self, cfg: ASRConfig):
        from faster_whisper import WhisperModel

        if cfg.partial_interval_ms <= 0 or cfg.beam_size < 1:
            raise ValueError("asr.partial_interval_ms must be > 0 and asr.beam_size >= 1")
        self.cfg = cfg
        self.name = f"whisper:{cfg.model}"
        self.path = resolve_whisper(cfg.model)
        self.partial_samples = INPUT_RATE * cfg.partial_interval_ms // 1000
        try:
            # Half the cores (max 4): ASR runs beside the LLM and TTS, and CTranslate2's
            # OpenMP threads degrade badly when they compete for cores.
            self.model = WhisperModel(self.path, device=cfg.device, compute_type=cfg.compute_type,
                                      cpu_threads=min(4, max(1, (os.cpu_count() or 2) // 2)))
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelUnavailable("asr", cfg.model, f"faster-whisper cannot load {self.path} ({exc})",
                                   CONVERT_HINT) from exc

    def transcribe(self, audio: np.ndarray, language: str | None, beam_size: int) -> str:
        """Text of a whole 16 kHz float32 utterance."""
        segments, _ = self.model.transcribe(
            audio, language=language or self.cfg.language, beam_size=beam_size, temperature=0.0,
            without_timestamps=True, vad_filter=False, condition_on_previous_text=False)
        return "".join(s.text for s in segments).strip()

    def stream(self, language: str | None = None) -> WhisperStream:
        return WhisperStream(self, language)
