"""Stereo dialogue corpora for VAP: one two-channel wav per dialogue (channel k
= speaker k) and an annotation JSON beside it with the same stem:

    {"alignments": [[word, [start_s, end_s], speaker], ...]}   # moshi-finetune style
 or {"segments": [[start_s, end_s, speaker], ...]}              # voice activity
    optional: "speakers": [name_of_channel_0, name_of_channel_1],
              "split": "train" | "val" | "test"

`speaker` is 0/1 or a name (mapped by "speakers", else the two names in sorted
order). Without "split", a stable hash of the name puts 80/10/10 % of the
dialogues into train/val/test. Audio is resampled to 16 kHz; voice activity
comes from the annotation exactly as for Switchboard (voiced words merged
across gaps <= 50 ms; bracketed noise tokens are not voice).
"""
from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from duplex.audio import resample
from duplex.data.switchboard import Dialogue

RATE = 16_000
HOP = 320  # samples per 20 ms frame


@dataclass
class CorpusItem:
    name: str
    split: str
    audio: np.ndarray  # (2, samples) float32 at 16 kHz, samples = frames * HOP
    va: np.ndarray  # (frames, 2) float32


def _split_of(name: str) -> str:
    h = zlib.crc32(name.encode()) % 10
    return "val" if h == 8 else "test" if h == 9 else "train"


def _speaker_index(spk, names: list | None, seen: list, where: str) -> int:
    if names is not None:
        if spk not in names:
            raise ValueError(f"{where}: speaker {spk!r} is not in \"speakers\" {names}")
        return names.index(spk)
    if spk in (0, 1):
        return int(spk)
    if spk not in seen:
        seen.append(spk)
    return -1  # resolved once all names are known


def annotation_words(ann: dict, where: str = "annotation") -> tuple[list, list]:
    """Per-channel [[start, end, word], ...] lists from an annotation dict."""
    if "alignments" in ann:
        items = [(w, float(t[0]), float(t[1]), spk) for w, t, spk in ann["alignments"]]
    elif "segments" in ann:
        items = [("x", float(a), float(b), spk) for a, b, spk in ann["segments"]]
    else:
        raise ValueError(f"{where}: needs \"alignments\" or \"segments\"")
    names = ann.get("speakers")
    seen: list = []
    idx = [_speaker_index(spk, names, seen, where) for *_, spk in items]
    if seen:
        if len(seen) > 2:
            raise ValueError(f"{where}: {len(seen)} speakers ({seen}); a stereo dialogue has 2 — "
                             f"name the channels with \"speakers\"")
        order = sorted(seen)
        idx = [order.index(spk) if i < 0 else i for i, (*_, spk) in zip(idx, items)]
    words: tuple[list, list] = ([], [])
    for (w, a, b, _), k in zip(items, idx):
        if b < a:
            raise ValueError(f"{where}: word {w!r} ends before it starts ({a} > {b})")
        words[k].append([a, b, w])
    return words


def load_item(wav: str | Path) -> CorpusItem:
    wav = Path(wav)
    ann_path = wav.with_suffix(".json")
    if not ann_path.exists():
        raise FileNotFoundError(f"{wav}: no annotation {ann_path.name} beside it")
    ann = json.loads(ann_path.read_text())
    audio, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    if audio.shape[1] != 2:
        raise ValueError(f"{wav}: VAP needs two channels (one per speaker), found {audio.shape[1]}")
    audio = np.stack([resample(audio[:, k], sr, RATE) for k in (0, 1)])
    n = audio.shape[1] // HOP
    audio = audio[:, : n * HOP]
    d = Dialogue(wav.stem, ann.get("split", _split_of(wav.stem)), annotation_words(ann, str(ann_path)))
    va = d.voice_activity(50, duration=n / 50)[:n]
    return CorpusItem(wav.stem, d.split, np.ascontiguousarray(audio), va)


def load_corpus(directory: str | Path, split: str | None = None, limit: int | None = None
                ) -> list[CorpusItem]:
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"corpus directory {directory} does not exist")
    wavs = sorted(directory.glob("*.wav"))
    if not wavs:
        raise FileNotFoundError(f"{directory}: no .wav files")
    out = []
    for w in wavs:
        ann = json.loads(w.with_suffix(".json").read_text()) if w.with_suffix(".json").exists() else {}
        if split and ann.get("split", _split_of(w.stem)) != split:
            continue
        out.append(load_item(w))
        if limit is not None and len(out) >= limit:
            break
    return out
