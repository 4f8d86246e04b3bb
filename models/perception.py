"""Per-session perception: VAD on the user's audio and, when configured, the
VAP projection over both channels. Runs in a worker thread; produces the
`Frame`s the turn-taking policy reads in the core."""
from __future__ import annotations

import numpy as np

from duplex.interfaces import FRAME_MS
from duplex.turn import Frame


class Perceiver:
    def __init__(self, vad, vap_stream=None):
        self.vad, self.vap = vad, vap_stream

    def process(self, audio: np.ndarray, first_frame: int, agent_active: list[bool]) -> list[Frame]:
        probs = self.vad.process(audio)
        if len(probs) != len(agent_active):
            raise RuntimeError(f"VAD returned {len(probs)} frames for {len(agent_active)}")
        frames = []
        for k, (p, agent) in enumerate(zip(probs, agent_active)):
            t = (first_frame + k + 1) * FRAME_MS / 1000
            vap = self.vap.step(float(p), bool(agent)) if self.vap is not None else None
            frames.append(Frame(t, float(p), bool(agent), vap))
        return frames
