"""What a call leaves behind: events with their arrival times and the agent's
audio placed where it played. Written by `duplex call` (real socket) and by
the virtual-clock driver, read by the benchmarks: one format for both.

Files in a call directory:
- `events.jsonl`: one {"t": seconds, "event": {...}} per server event, t on
  the client clock with 0 at the first input sample;
- `agent.wav`: the agent's audio, time-synchronous with the input and as long
  as it (silence where the agent was silent) — what Full-Duplex-Bench calls
  `output.wav`;
- `conversation.wav`: stereo, user left, agent right, at the agent's rate.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from .audio import resample
from .playback import PlaybackTimeline


@dataclass
class CallRecord:
    input_audio: np.ndarray = field(repr=False)  # float32 mono
    input_rate: int
    output_rate: int = 24_000
    events: list[tuple[float, dict]] = field(default_factory=list, repr=False)
    timeline: PlaybackTimeline | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.timeline is None:
            self.timeline = PlaybackTimeline(self.output_rate)

    @property
    def duration(self) -> float:
        return self.input_audio.size / self.input_rate

    def add_event(self, event: dict, t: float) -> None:
        self.events.append((t, event))
        if event.get("type") == "session.created":
            rate = event.get("session", {}).get("output_sample_rate")
            if rate and rate != self.output_rate and not self.timeline.pieces:
                self.output_rate = rate
                self.timeline = PlaybackTimeline(rate)
        self.timeline.on_event(event, t)

    def add_audio(self, audio: np.ndarray, t: float) -> None:
        self.timeline.on_audio(audio, t)

    def of_type(self, *types: str) -> list[tuple[float, dict]]:
        return [(t, e) for t, e in self.events if e.get("type") in types]

    def agent_track(self, duration: float | None = None) -> np.ndarray:
        return self.timeline.render(self.duration if duration is None else duration)

    def write(self, out_dir: str | Path, agent_s: float | None = None) -> Path:
        """Write the call directory. conversation.wav holds the whole call; agent.wav is
        `agent_s` long (cut or padded; default the whole call), e.g. the original input's
        length when the call went on with tail silence."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        agent_s = self.duration if agent_s is None else agent_s
        track = self.agent_track(max(self.duration, agent_s))  # rendered once for both files
        sf.write(out / "agent.wav", track[: int(round(agent_s * self.output_rate))],
                 self.output_rate, subtype="PCM_16")
        agent = track[: int(round(self.duration * self.output_rate))]
        user = resample(self.input_audio, self.input_rate, self.output_rate)
        n = max(user.size, agent.size)
        stereo = np.zeros((n, 2), dtype=np.float32)
        stereo[: user.size, 0], stereo[: agent.size, 1] = user, agent
        sf.write(out / "conversation.wav", stereo, self.output_rate, subtype="PCM_16")
        with open(out / "events.jsonl", "w") as f:
            for t, ev in self.events:
                f.write(json.dumps({"t": round(t, 4), "event": ev}) + "\n")
        return out

    @classmethod
    def read(cls, out_dir: str | Path, input_wav: str | Path | None = None) -> "CallRecord":
        """Load a call directory (the input from `input_wav`, else the stereo file's left channel)."""
        out = Path(out_dir)
        agent, rate = sf.read(out / "agent.wav", dtype="float32")
        if input_wav is not None:
            user, in_rate = sf.read(input_wav, dtype="float32")
            user = user if user.ndim == 1 else user.mean(axis=1)
        else:
            stereo, in_rate = sf.read(out / "conversation.wav", dtype="float32")
            user = stereo[:, 0]
        rec = cls(user, in_rate, rate)
        with open(out / "events.jsonl") as f:
            rec.events = [(d["t"], d["event"]) for d in map(json.loads, f)]
        rec.timeline.on_audio(agent, 0.0)  # the rendered track already holds the timing
        return rec
