"""Synthetic two-speaker dialogues: Switchboard's timing, espeak-ng's voices.

Every word of a Switchboard dialogue is spoken by espeak-ng (one voice per
speaker) at its original start time, so the timing of turns, gaps, overlaps
and backchannels is human while the words are easy to align: the word times
written out are the Switchboard ones. A word longer than its slot is sped up
(up to 2x, by resampling) and then cut; a shorter one keeps its length.

API (kept small so other recipes can reuse the rendering):

    render_channel(words, duration_s, voice="en-us", rate=16000) -> float32 audio
        words: [(start_s, end_s, text), ...] as in `duplex.data.switchboard`
    render_dialogue(dialogue, agent="A", rate=24000, start_s=0, duration_s=None)
        -> SynthDialogue(agent, user, rate, agent_words, user_words)
    build_dataset(out_dir, limit=..., clip_s=30, ...) -> path of the .jsonl
        writes the moshi-finetune layout (see moshi_format)

CLI: python -m duplex.recipes.data.synth_dialogues OUT_DIR --limit 20 --clip-s 30
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from duplex.audio import resample
from duplex.data.switchboard import NOT_VOICE, Dialogue, load_dialogues
from duplex.flatten import Word

from .moshi_format import write_clip, write_manifest

VOICES = ("en-us+f3", "en-gb")  # agent, user
SPEED_WPM = 200  # Switchboard talk is fast; espeak's default (175) needs more squeezing
MAX_SPEEDUP = 2.0


def spoken_text(token: str) -> str | None:
    """What to say for a Switchboard token; None for noise and silence.

    "[laughter-yes]" -> "yes", "okay_1" -> "okay", partial "an[y]-" -> "an"."""
    t = token.strip().lower()
    if not t or t in NOT_VOICE or t == "[laughter]" or t.startswith("<"):
        return None
    m = re.fullmatch(r"\[laughter-(.+)\]", t)
    if m:
        t = m.group(1)
    t = re.sub(r"_\d+$", "", t)
    t = re.sub(r"\[[^\]]*\]", "", t).replace("{", "").replace("}", "").strip("-")
    return t or None


class Voice:
    """One espeak-ng voice at one rate, with a cache of rendered words."""

    def __init__(self, voice: str = "en-us", rate: int = 16000, speed: int = SPEED_WPM):
        if shutil.which("espeak-ng") is None:
            raise RuntimeError("espeak-ng is not installed (Debian/Ubuntu: apt install espeak-ng)")
        self.voice, self.rate, self.speed = voice, rate, speed
        self._cache: dict[str, np.ndarray] = {}

    def say(self, text: str) -> np.ndarray:
        """`text` spoken, leading and trailing silence trimmed, float32 at `rate`."""
        if text not in self._cache:
            with tempfile.NamedTemporaryFile(suffix=".wav") as f:
                proc = subprocess.run(["espeak-ng", "-v", self.voice, "-s", str(self.speed), "-w",
                                       f.name, "--", text], capture_output=True)
                if proc.returncode != 0:
                    raise RuntimeError(f"espeak-ng failed for voice {self.voice!r}: "
                                       f"{proc.stderr.decode(errors='replace').strip()}")
                audio, sr = sf.read(f.name, dtype="float32")
            voiced = np.flatnonzero(np.abs(audio) > 1e-3)
            audio = audio[voiced[0]: voiced[-1] + 1] if voiced.size else audio[:0]
            self._cache[text] = resample(audio, sr, self.rate)
        return self._cache[text]


def fit(audio: np.ndarray, seconds: float, rate: int) -> np.ndarray:
    """Squeeze `audio` into `seconds` (resampling up to MAX_SPEEDUP, then a cut with a fade)."""
    target = max(int(round(seconds * rate)), 1)
    if len(audio) <= target:
        return audio
    squeezed = max(target, int(len(audio) / MAX_SPEEDUP))
    audio = resample(audio, len(audio), squeezed) if squeezed < len(audio) else audio
    audio = audio[:target].copy()
    fade = min(len(audio), int(0.01 * rate))
    if fade:
        audio[-fade:] *= np.linspace(1, 0, fade, dtype=np.float32)
    return audio


def render_channel(words: Sequence[Sequence], duration_s: float, voice: str | Voice = "en-us",
                   rate: int = 16000) -> np.ndarray:
    """One speaker's channel: each (start, end, token) spoken at its start time."""
    v = voice if isinstance(voice, Voice) else Voice(voice, rate)
    if v.rate != rate:
        raise ValueError(f"voice renders at {v.rate} Hz, channel asked for {rate} Hz")
    out = np.zeros(int(round(duration_s * rate)), np.float32)
    for start, end, token in words:
        text = spoken_text(token)
        if text is None or start >= duration_s or end <= start:
            continue
        audio = fit(v.say(text), end - start, rate)
        a = int(round(start * rate))
        n = min(len(audio), len(out) - a)
        out[a:a + n] += audio[:n]
    return np.clip(out, -1, 1)


@dataclass
class SynthDialogue:
    agent: np.ndarray
    user: np.ndarray
    rate: int
    agent_words: list[Word]
    user_words: list[Word]


def render_dialogue(dialogue: Dialogue, agent: str = "A", rate: int = 24000, start_s: float = 0.0,
                    duration_s: float | None = None, voices: Sequence[str | Voice] = VOICES
                    ) -> SynthDialogue:
    """The stretch [start_s, start_s + duration_s) of a dialogue; word times relative to start_s."""
    if agent not in ("A", "B"):
        raise ValueError(f"agent must be 'A' or 'B', got {agent!r}")
    end_s = dialogue.duration if duration_s is None else min(start_s + duration_s,
                                                             dialogue.duration)
    if end_s <= start_s:
        raise ValueError(f"{dialogue.id}: nothing to render from {start_s:.2f} s "
                         f"(the dialogue lasts {dialogue.duration:.2f} s)")
    sides = (0, 1) if agent == "A" else (1, 0)
    channels, word_lists = [], []
    for side, voice in zip(sides, voices):
        inside = [(s - start_s, e - start_s, w) for s, e, w in dialogue.words[side]
                  if start_s <= s < end_s]
        channels.append(render_channel(inside, end_s - start_s, voice, rate))
        word_lists.append([Word(spoken_text(w), s, min(e, end_s - start_s))
                           for s, e, w in inside if spoken_text(w)])
    return SynthDialogue(channels[0], channels[1], rate, word_lists[0], word_lists[1])


def build_dataset(out_dir: str | Path, *, limit: int = 10, split: str | None = "train",
                  clip_s: float = 30.0, clips_per_dialogue: int = 4, agent: str = "A",
                  rate: int = 24000, switchboard: str | Path | None = None,
                  voices: Sequence[str] = VOICES, manifest: str = "train.jsonl") -> Path:
    """Render clips of Switchboard dialogues into `out_dir` (moshi-finetune layout)."""
    out_dir = Path(out_dir)
    if clip_s <= 0 or limit < 1 or clips_per_dialogue < 1:
        raise ValueError("clip_s, limit and clips_per_dialogue must be positive")
    voice_objs = [Voice(v, rate) for v in voices]
    clips = []
    dialogues = list(load_dialogues(switchboard, split=split, limit=limit))
    for d in tqdm(dialogues, desc="rendering dialogues", unit="dialogue"):
        for k in range(clips_per_dialogue):
            start = k * clip_s
            if start >= d.duration:
                break
            s = render_dialogue(d, agent, rate, start, clip_s, voice_objs)
            clips.append(write_clip(out_dir / "clips" / f"{d.id}_{k:03d}.wav", s.agent, s.user,
                                    rate, s.agent_words, s.user_words))
    if not clips:
        raise ValueError("no dialogues rendered (check --split and the Switchboard file)")
    return write_manifest(out_dir / manifest, clips)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m duplex.recipes.data.synth_dialogues",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("out_dir")
    p.add_argument("--limit", type=int, default=10, help="dialogues to render")
    p.add_argument("--split", default="train", help="train | val | test | all")
    p.add_argument("--clip-s", type=float, default=30.0)
    p.add_argument("--clips-per-dialogue", type=int, default=4)
    p.add_argument("--agent", default="A", choices=("A", "B"))
    p.add_argument("--rate", type=int, default=24000)
    p.add_argument("--switchboard", default=None, help="switchboard_ms98_words.jsonl.gz")
    a = p.parse_args(argv)
    path = build_dataset(a.out_dir, limit=a.limit, split=None if a.split == "all" else a.split,
                         clip_s=a.clip_s, clips_per_dialogue=a.clips_per_dialogue, agent=a.agent,
                         rate=a.rate, switchboard=a.switchboard)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
