"""User-side speech for benchmark inputs: espeak-ng voices, and piper voices
when one is available locally, rendered at 16 kHz and cached on disk.

Voice names: an espeak-ng voice (`en-us`, `en-gb`, `en-us+f3`, ...) or
`piper:NAME` (a piper voice name or .onnx path, resolved like `tts.model`).
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from duplex.audio import resample

RATE = 16_000
DEFAULT_SPEED = 165  # espeak-ng words per minute


def local_piper_voices() -> list[str]:
    """`piper:PATH` for each voice found in piper's local voice folders ($PIPER_VOICES_DIR,
    ~/.local/share/piper): used beside the espeak-ng voices when there are any."""
    from duplex.models.tts_piper import voice_dirs

    found = []
    for folder in voice_dirs():
        if folder.is_dir():
            found += [f"piper:{p}" for p in sorted(folder.glob("*.onnx")) if Path(f"{p}.json").is_file()]
    return found


def cache_dir() -> Path:
    from duplex.models.hub import cache_root

    return cache_root() / "bench-speech"


class Speaker:
    """Renders text with named voices; identical requests come from the cache."""

    def __init__(self, cache: str | Path | None = None):
        self.cache = Path(cache) if cache else cache_dir()
        self._piper: dict[str, object] = {}

    def render(self, text: str, voice: str = "en-us", speed: int | None = None) -> np.ndarray:
        """float32 mono speech at 16 kHz."""
        if not text.strip():
            raise ValueError("cannot render empty text")
        speed = int(speed or DEFAULT_SPEED)
        key = hashlib.sha1(f"{voice}|{speed}|{text}".encode()).hexdigest()[:20]
        path = self.cache / f"{key}.wav"
        if path.is_file():
            audio, _ = sf.read(path, dtype="float32")
            return audio
        audio = self._piper_say(text, voice[6:], speed) if voice.startswith("piper:") \
            else self._espeak_say(text, voice, speed)
        audio = _trim(audio)
        self.cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{np.random.randint(1 << 30)}.tmp.wav")
        sf.write(tmp, audio, RATE, subtype="FLOAT")
        tmp.replace(path)  # atomic: concurrent renderers never see half a file
        return audio

    def _espeak_say(self, text: str, voice: str, speed: int) -> np.ndarray:
        exe = shutil.which("espeak-ng")
        if exe is None:
            raise RuntimeError("espeak-ng is not installed (apt install espeak-ng); "
                               "benchmark scenarios are rendered with it")
        with tempfile.NamedTemporaryFile(suffix=".wav") as f:
            proc = subprocess.run([exe, "-v", voice, "-s", str(speed), "-w", f.name, "--stdin"],
                                  input=text.encode(), capture_output=True, check=False)
            if proc.returncode != 0 or "not found" in proc.stderr.decode(errors="replace").lower():
                raise ValueError(f"espeak-ng cannot speak with voice {voice!r}: "
                                 f"{proc.stderr.decode(errors='replace').strip()} "
                                 f"(list voices with `espeak-ng --voices=en`)")
            audio, sr = sf.read(f.name, dtype="float32")
        return resample(audio, sr, RATE)

    def _piper_say(self, text: str, name: str, speed: int) -> np.ndarray:
        from duplex.models.tts_piper import PiperTTS

        from duplex.config import TTSConfig

        if name not in self._piper:  # raises ModelUnavailable naming the voice when missing
            self._piper[name] = PiperTTS(TTSConfig(engine="piper", model=name,
                                                   speed=speed / DEFAULT_SPEED))
        tts = self._piper[name]
        chunks = list(tts.synthesize(text))
        audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        return resample(audio, tts.sample_rate, RATE)


def _trim(audio: np.ndarray, floor: float = 0.002) -> np.ndarray:
    """Cut leading and trailing silence, so a script's times are the speech's times."""
    loud = np.flatnonzero(np.abs(audio) > floor)
    if loud.size == 0:
        raise ValueError("the voice rendered only silence")
    return audio[loud[0]: loud[-1] + 1].astype(np.float32)
