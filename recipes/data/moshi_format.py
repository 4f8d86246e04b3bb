"""The moshi-finetune dialogue layout (REFERENCE §4), read and written.

    data/
      train.jsonl          one {"path": "clips/x.wav", "duration": 30.0} per line
      clips/x.wav          stereo: left = agent (the model), right = user
      clips/x.json         {"alignments": [[word, [start, end], speaker], ...]}

Speakers are "SPEAKER_MAIN" (the agent, left channel) and "SPEAKER_OTHER"
(the user), as moshi-finetune's annotate.py writes them; any label other than
SPEAKER_MAIN is read as the user. Paths in the .jsonl may be absolute or
relative; relative ones are looked up next to the .jsonl first, then in the
current directory (where moshi-finetune looks). Times are seconds from the
start of the wav; alignments are kept sorted by start.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from duplex.audio import resample
from duplex.flatten import Word

AGENT = "SPEAKER_MAIN"
USER = "SPEAKER_OTHER"


@dataclass
class DialogueClip:
    path: Path  # the stereo wav
    duration: float
    alignments: list[tuple[str, tuple[float, float], str]] = field(default_factory=list)

    def words(self, agent: bool = True) -> list[Word]:
        """The agent's (or the user's) words, sorted by start."""
        return sorted((Word(w, float(s), float(e)) for w, (s, e), spk in self.alignments
                       if (spk == AGENT) == agent), key=lambda w: w.start)

    def load_audio(self, rate: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
        """(agent, user, rate): the two channels as float32, resampled to `rate` if given."""
        try:
            audio, sr = sf.read(str(self.path), dtype="float32", always_2d=True)
        except Exception as exc:
            raise ValueError(f"{self.path}: cannot read audio ({exc})") from exc
        if audio.shape[1] != 2:
            raise ValueError(f"{self.path}: expected stereo (left = agent, right = user), got "
                             f"{audio.shape[1]} channel(s)")
        agent, user = audio[:, 0].copy(), audio[:, 1].copy()
        if rate and rate != sr:
            agent, user, sr = resample(agent, sr, rate), resample(user, sr, rate), rate
        return agent, user, sr


def _parse_alignments(data: object, where: str) -> list[tuple[str, tuple[float, float], str]]:
    if not isinstance(data, dict) or not isinstance(data.get("alignments"), list):
        raise ValueError(f"{where}: expected an object with an \"alignments\" list")
    out = []
    for i, item in enumerate(data["alignments"]):
        try:
            word, (start, end), speaker = item
            out.append((str(word), (float(start), float(end)), str(speaker)))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: alignment {i} is not [word, [start, end], speaker]: "
                             f"{item!r}") from exc
    return sorted(out, key=lambda a: a[1][0])


def _resolve(path: str, manifest: Path) -> Path:
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    near = manifest.parent / p
    return near if near.exists() or not p.exists() else p


def read_clip(wav: str | Path, duration: float | None = None) -> DialogueClip:
    """One clip: the wav and the .json next to it."""
    wav = Path(wav)
    meta = wav.with_suffix(".json")
    if not wav.exists():
        raise FileNotFoundError(f"audio file {wav} does not exist")
    if not meta.exists():
        raise FileNotFoundError(f"{wav}: no alignment file {meta.name} next to it")
    try:
        data = json.loads(meta.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{meta}: not valid JSON ({exc})") from exc
    if duration is None:
        duration = sf.info(str(wav)).duration
    return DialogueClip(wav, float(duration), _parse_alignments(data, str(meta)))


def read_manifest(path: str | Path) -> list[DialogueClip]:
    """Every clip listed in a .jsonl manifest."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"dialogue manifest {path} does not exist")
    clips = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            wav, duration = entry["path"], float(entry["duration"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}:{n}: expected {{\"path\": ..., \"duration\": ...}}, got "
                             f"{line[:120]!r}") from exc
        clips.append(read_clip(_resolve(wav, path), duration))
    if not clips:
        raise ValueError(f"{path}: the manifest lists no clips")
    return clips


def write_clip(wav: str | Path, agent: np.ndarray, user: np.ndarray, rate: int,
               agent_words: Iterable[Word], user_words: Iterable[Word]) -> DialogueClip:
    """Write a stereo wav (PCM16) and its alignment .json; returns the clip."""
    wav = Path(wav)
    n = max(len(agent), len(user))
    stereo = np.zeros((n, 2), np.float32)
    stereo[: len(agent), 0], stereo[: len(user), 1] = agent, user
    wav.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(wav), np.clip(stereo, -1, 1), rate, subtype="PCM_16")
    alignments = [(w.text, (round(w.start, 4), round(w.end if w.end is not None else w.start, 4)),
                   spk) for spk, words in ((AGENT, agent_words), (USER, user_words)) for w in words]
    alignments.sort(key=lambda a: a[1][0])
    wav.with_suffix(".json").write_text(json.dumps(
        {"alignments": [[w, list(t), s] for w, t, s in alignments]}))
    return DialogueClip(wav, n / rate, alignments)


def write_manifest(path: str | Path, clips: Sequence[DialogueClip], absolute: bool = False) -> Path:
    """The .jsonl of clips: paths relative to its directory unless `absolute`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for c in clips:
        p = c.path.resolve()
        if not absolute:
            try:
                p = p.relative_to(path.parent.resolve())
            except ValueError:
                pass
        lines.append(json.dumps({"path": str(p), "duration": round(c.duration, 4)}))
    path.write_text("\n".join(lines) + "\n")
    return path
