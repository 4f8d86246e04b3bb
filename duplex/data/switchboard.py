"""Switchboard word timings (../shared/data/switchboard_ms98_words.jsonl.gz).

One dialogue per line: {"id", "split", "A": [[start, end, word], ...], "B": ...}.
Voice activity comes from the word times: bracketed noise tokens are not
voice (laughter and laughed words are), and same-speaker gaps up to
`bridge_s` (50 ms) are bridged, as in the reference statistics.
"""
from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

NOT_VOICE = {"[noise]", "[vocalized-noise]", "[silence]"}


def default_path() -> Path:
    """The shared data file: $DUPLEX_SWITCHBOARD, else ../shared/data next to the checkout."""
    env = os.environ.get("DUPLEX_SWITCHBOARD")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in [*here.parents, Path.cwd(), *Path.cwd().parents]:
        cand = parent / "shared" / "data" / "switchboard_ms98_words.jsonl.gz"
        if cand.exists():
            return cand
        cand = parent.parent / "shared" / "data" / "switchboard_ms98_words.jsonl.gz"
        if cand.exists():
            return cand
    return Path("../shared/data/switchboard_ms98_words.jsonl.gz")


@dataclass(frozen=True)
class Dialogue:
    id: str
    split: str
    words: tuple[list, list]  # per speaker (A, B): [[start_s, end_s, word], ...]

    @property
    def duration(self) -> float:
        ends = [w[1] for spk in self.words for w in spk]
        return max(ends) if ends else 0.0

    def segments(self, speaker: int, bridge_s: float = 0.05) -> list[tuple[float, float]]:
        """Voice-activity segments of one speaker: voiced words merged across gaps <= bridge_s."""
        segs: list[list[float]] = []
        for start, end, word in sorted(self.words[speaker], key=lambda w: w[0]):
            if word.lower() in NOT_VOICE or end <= start:
                continue
            if segs and start - segs[-1][1] <= bridge_s:
                segs[-1][1] = max(segs[-1][1], end)
            else:
                segs.append([start, end])
        return [(s, e) for s, e in segs]

    def voice_activity(self, frame_hz: int = 50, bridge_s: float = 0.05,
                       duration: float | None = None) -> np.ndarray:
        """Frames x 2 float32 array of voice activity (1 = speaking) at frame_hz."""
        dur = self.duration if duration is None else duration
        n = int(np.ceil(dur * frame_hz))
        va = np.zeros((n, 2), dtype=np.float32)
        for spk in (0, 1):
            for s, e in self.segments(spk, bridge_s):
                a, b = int(round(s * frame_hz)), int(round(e * frame_hz))
                va[a:max(b, a + 1), spk] = 1.0
        return va


def load_dialogues(path: str | Path | None = None, split: str | None = None,
                   limit: int | None = None) -> Iterator[Dialogue]:
    """Yield dialogues, optionally only one split ("train", "val", "test")."""
    p = Path(path) if path else default_path()
    if not p.exists():
        raise FileNotFoundError(
            f"Switchboard word timings not found at {p}; set DUPLEX_SWITCHBOARD to the "
            f"switchboard_ms98_words.jsonl.gz file")
    count = 0
    with gzip.open(p, "rt", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            if split and d["split"] != split:
                continue
            yield Dialogue(d["id"], d["split"], (d["A"], d["B"]))
            count += 1
            if limit is not None and count >= limit:
                return
