"""Render Switchboard word timings into two-channel speech with TTS voices at
the original times, so the audio VAP model can be trained without licensed
audio. Writes a corpus (corpus.py): <id>.wav (16 kHz stereo) + <id>.json.

    python -m duplex.recipes.vap.render --out data/swb_tts --split train --limit 50

Each voiced segment (words merged across gaps <= 50 ms) is spoken by
espeak-ng (one voice per channel) at a speed near the original, trimmed and
time-fitted to the segment, so the voice activity of the audio matches the
timings the labels come from.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from duplex.audio import resample
from duplex.data.switchboard import NOT_VOICE, Dialogue, load_dialogues

RATE = 16_000
VOICES = ("en-us", "en-gb")


def espeak(text: str, voice: str, wpm: int) -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (apt install espeak-ng)")
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", f.name, text],
                       check=True, capture_output=True)
        audio, sr = sf.read(f.name, dtype="float32")
    return resample(audio, sr, RATE)


def trim(audio: np.ndarray, thresh: float = 0.01) -> np.ndarray:
    idx = np.flatnonzero(np.abs(audio) > thresh)
    return audio[idx[0]: idx[-1] + 1] if len(idx) else audio[:0]


def segment_text(words: list, a: float, b: float) -> str:
    out = []
    for s, e, w in words:
        if s >= a - 1e-6 and e <= b + 1e-6 and w.lower() not in NOT_VOICE:
            w = w.strip("[]").split("-")[-1] if w.startswith("[") else w.rstrip("-")
            out.append(w)
    return " ".join(out) or "mm"


def render_dialogue(d: Dialogue, max_seconds: float | None = None) -> tuple[np.ndarray, list]:
    """(2, samples) audio and the alignments actually rendered."""
    dur = d.duration if max_seconds is None else min(d.duration, max_seconds)
    n = int(np.ceil(dur * 50)) * 320
    audio = np.zeros((2, n), np.float32)
    align = []
    for spk in (0, 1):
        words = sorted(d.words[spk], key=lambda w: w[0])
        for a, b in d.segments(spk):
            if b > dur:
                break
            text = segment_text(words, a, b)
            wpm = int(np.clip(len(text.split()) / max(b - a, 0.1) * 60, 80, 400))
            seg = trim(espeak(text, VOICES[spk], wpm))
            i, j = int(round(a * RATE)), int(round(b * RATE))
            if len(seg) and j > i:
                # time-fit to the segment (changes the pitch a little; fine for training)
                seg = np.interp(np.linspace(0, len(seg) - 1, j - i), np.arange(len(seg)), seg)
                audio[spk, i:j] += 0.8 * seg / max(1e-6, np.abs(seg).max())
            align.append([text, [round(a, 3), round(b, 3)], spk])
    return np.clip(audio, -1, 1), align


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m duplex.recipes.vap.render", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--split", default="train", choices=("train", "val", "test"))
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--max-seconds", type=float, default=None, help="crop each dialogue")
    ap.add_argument("--data", default=None)
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for d in tqdm(list(load_dialogues(args.data, args.split, args.limit)), desc="render", unit="dlg"):
        audio, align = render_dialogue(d, args.max_seconds)
        sf.write(out / f"{d.id}.wav", audio.T, RATE, subtype="PCM_16")
        (out / f"{d.id}.json").write_text(json.dumps(
            {"alignments": align, "split": d.split,
             "source": "Switchboard MS-98 word timings rendered with espeak-ng"}) + "\n")
    print(f"wrote {args.limit} dialogues to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
