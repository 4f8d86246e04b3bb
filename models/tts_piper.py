"""TTS with piper (VITS voices run by onnxruntime), piper-tts 1.8.

`cfg.model` is a voice name such as "en_US-lessac-medium", a path to a
voice .onnx (its config beside it as .onnx.json) or a directory holding one
voice. A name is looked up in $PIPER_VOICES_DIR, ~/.local/share/piper, the
Hugging Face cache (repo rhasspy/piper-voices), then downloaded from there.
Audio streams one sentence at a time (piper's own sentence split), as
float32 at the voice's rate.
"""
from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from duplex.config import TTSConfig
from duplex.errors import ModelUnavailable
from duplex.models import hub

VOICES_REPO = "rhasspy/piper-voices"
VOICE_NAME = re.compile(r"^(?P<family>[a-z]{2,3})_(?P<region>[A-Za-z]{2,3})-(?P<speaker>[^-/\\]+)"
                        r"-(?P<quality>x_low|low|medium|high)$")
HINT = ("download the voice's .onnx and .onnx.json (python -m piper.download_voices NAME "
        "--download-dir DIR) on a machine with network access, then set tts.model=DIR/NAME.onnx "
        "or PIPER_VOICES_DIR=DIR")


def voice_dirs() -> list[Path]:
    """Local folders searched for `<name>.onnx`, in order."""
    dirs = [os.environ.get("PIPER_VOICES_DIR", ""),
            os.path.join(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share", "piper")]
    return [Path(d).expanduser() for d in dirs if d]


def _onnx_in_dir(name: str, folder: Path) -> Path:
    voices = sorted(folder.glob("*.onnx"))
    if len(voices) != 1:
        found = ", ".join(v.name for v in voices) or "none"
        raise ModelUnavailable("tts", name, f"the directory {folder} must hold exactly one voice .onnx "
                               f"(found: {found})", "set tts.model to the .onnx file itself")
    return voices[0]


def resolve_voice(name: str) -> Path:
    """Path of the voice .onnx for a name, file or directory (its .onnx.json must sit beside it)."""
    path = hub.local_path("tts", name)
    if path is None:
        match = VOICE_NAME.match(name)
        if match is None:
            raise ModelUnavailable("tts", name, "it is not a piper voice name like en_US-lessac-medium, "
                                   "nor an existing .onnx file or directory", HINT)
        for folder in voice_dirs():
            for candidate in (folder / f"{name}.onnx", *folder.glob(f"*/{name}.onnx")):
                if candidate.is_file():
                    path = candidate
                    break
            if path is not None:
                break
        else:
            lang = f"{match['family']}_{match['region']}"
            stem = f"{match['family']}/{lang}/{match['speaker']}/{match['quality']}/{name}"
            path = hub.hub_file("tts", name, VOICES_REPO, f"{stem}.onnx", hint=HINT)
            hub.hub_file("tts", name, VOICES_REPO, f"{stem}.onnx.json", hint=HINT)
    if path.is_dir():
        path = _onnx_in_dir(name, path)
    if path.suffix != ".onnx":
        raise ModelUnavailable("tts", name, f"{path} is not a piper voice .onnx file", HINT)
    if not Path(f"{path}.json").is_file():
        raise ModelUnavailable("tts", name, f"the voice config {path}.json is missing", HINT)
    return path


class PiperTTS:
    """TTS engine: `synthesize(text)` yields one float32 chunk per sentence at `sample_rate`."""

    def __init__(self, cfg: TTSConfig):
        from piper import PiperVoice

        if cfg.speed <= 0:
            raise ValueError(f"tts.speed must be > 0, got {cfg.speed}")
        self.cfg = cfg
        self.path = resolve_voice(cfg.model)
        try:
            self.voice = PiperVoice.load(self.path)
        except Exception as exc:
            raise ModelUnavailable("tts", cfg.model, f"piper cannot load {self.path} ({exc})", HINT) from exc
        self.name = f"piper:{self.path.stem}"
        self.sample_rate = int(self.voice.config.sample_rate)
        self.default_speaker = self.speaker_id(cfg.voice)

    def speaker_id(self, voice: str | None) -> int | None:
        """Speaker index for a multi-speaker voice (a name from its speaker map or an index).

        Single-speaker voices ignore `voice` (clients may send voice names meant for other engines)."""
        config = self.voice.config
        if config.num_speakers <= 1 or voice is None:
            return None
        if voice in config.speaker_id_map:
            return config.speaker_id_map[voice]
        if voice.isdigit() and int(voice) < config.num_speakers:
            return int(voice)
        raise ValueError(f"voice {voice!r} is not a speaker of {self.name} (speakers: "
                         f"{', '.join(config.speaker_id_map) or f'0..{config.num_speakers - 1}'})")

    def synthesize(self, text: str, *, voice: str | None = None,
                   cancel: threading.Event | None = None) -> Iterator[np.ndarray]:
        """Stream speech for `text`, one chunk per sentence; stops between sentences on `cancel`."""
        from piper import SynthesisConfig

        if not isinstance(text, str):
            raise TypeError(f"text must be a string, got {type(text).__name__}")
        speaker = self.speaker_id(voice) if voice is not None else self.default_speaker
        syn = SynthesisConfig(speaker_id=speaker, length_scale=self.voice.config.length_scale / self.cfg.speed)
        if not text.strip():
            return iter(())
        return self._stream(text, syn, cancel)

    def _stream(self, text, syn, cancel) -> Iterator[np.ndarray]:
        for chunk in self.voice.synthesize(text, syn_config=syn):
            if cancel is not None and cancel.is_set():
                return
            yield np.asarray(chunk.audio_float_array, dtype=np.float32).reshape(-1)
