"""Offline English ASR with pocketsphinx (its US English model ships in the pip package).

Decoders take ~0.3 s to build and are not thread-safe, so the engine keeps a
small pool: each live stream owns one decoder and gives it back on `finish`
(or `close`). Partials come from `process_raw` + `hyp()` as audio arrives.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from duplex.audio import float_to_pcm16
from duplex.config import ASRConfig
from duplex.errors import ModelUnavailable
from duplex.models.inputs import mono_float32

log = logging.getLogger(__name__)

BUNDLED = ("", "en-us", "en", "pocketsphinx")  # names meaning "the model inside the pip package"
MAX_IDLE_DECODERS = 4


def model_files(name: str) -> dict[str, str]:
    """hmm/lm/dict paths for `name`: the bundled en-us model, or a directory laid out like it
    (`<dir>/en-us/` acoustic model, `<dir>/en-us.lm.bin`, `<dir>/cmudict-en-us.dict`)."""
    try:
        import pocketsphinx
    except ImportError as exc:
        raise ModelUnavailable("asr", name or "en-us", "the `pocketsphinx` package is not installed",
                               "pip install pocketsphinx") from exc
    root = Path(pocketsphinx.get_model_path()) / "en-us" if name in BUNDLED else Path(name).expanduser()
    files = {"hmm": root / "en-us", "lm": root / "en-us.lm.bin", "dict": root / "cmudict-en-us.dict"}
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        raise ModelUnavailable(
            "asr", name, f"missing {', '.join(missing)}",
            "set asr.model=en-us for the model inside pip `pocketsphinx`, or to a directory with "
            "en-us/ (acoustic model), en-us.lm.bin and cmudict-en-us.dict")
    return {k: str(v) for k, v in files.items()}


class PocketsphinxStream:
    """One utterance on a decoder borrowed from the engine's pool."""

    def __init__(self, engine: PocketsphinxASR, decoder):
        self._engine, self._decoder = engine, decoder
        self._partial = ""
        decoder.start_utt()

    def feed(self, audio: np.ndarray) -> str | None:
        """Decode more 16 kHz audio; the new partial, or None when it did not change."""
        decoder = self._require_open()
        audio = mono_float32(audio, "ASR feed")
        if audio.size == 0:
            return None
        decoder.process_raw(float_to_pcm16(audio), False, False)
        hyp = decoder.hyp()
        text = hyp.hypstr.strip() if hyp is not None else ""
        if text == self._partial:
            return None
        self._partial = text
        return text

    def finish(self) -> str:
        """End the utterance: the final transcript; the decoder goes back to the pool."""
        decoder = self._require_open()
        try:
            decoder.end_utt()
            hyp = decoder.hyp()
            return hyp.hypstr.strip() if hyp is not None else ""
        finally:
            self._release()

    def close(self) -> None:
        """Abandon the utterance (e.g. a cancelled turn) and give the decoder back."""
        if self._decoder is not None:
            try:
                self._decoder.end_utt()
            finally:
                self._release()

    def _require_open(self):
        if self._decoder is None:
            raise RuntimeError("this ASR stream is finished; start a new one with asr.stream()")
        return self._decoder

    def _release(self) -> None:
        decoder, self._decoder = self._decoder, None
        self._engine._give_back(decoder)


class PocketsphinxASR:
    """ASR engine: `stream()` hands out one pocketsphinx decoder per utterance."""

    name = "pocketsphinx"

    def __init__(self, cfg: ASRConfig):
        self.cfg = cfg
        self.files = model_files(cfg.model)
        self._idle: list = []
        self._lock = threading.Lock()
        self._give_back(self._new_decoder())  # fail now, not on the first utterance

    def _new_decoder(self):
        from pocketsphinx import Decoder

        try:
            # fwdflat=False: the second search pass at end_utt costs ~250 ms of final latency
            # for little accuracy on short turns (bench: ~20 ms finish without it).
            return Decoder(samprate=16000, loglevel="FATAL", fwdflat=False, **self.files)
        except Exception as exc:
            raise ModelUnavailable("asr", self.cfg.model, f"pocketsphinx cannot load it ({exc})") from exc

    def _give_back(self, decoder) -> None:
        with self._lock:
            if len(self._idle) < MAX_IDLE_DECODERS:
                self._idle.append(decoder)

    def stream(self, language: str | None = None) -> PocketsphinxStream:
        if language is not None and not language.lower().startswith("en"):
            raise ValueError(f"pocketsphinx only has an English model; language {language!r} "
                             "is not supported (use asr.engine=whisper)")
        with self._lock:
            decoder = self._idle.pop() if self._idle else None
        return PocketsphinxStream(self, decoder or self._new_decoder())
