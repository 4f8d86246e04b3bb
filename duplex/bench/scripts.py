"""Scenario scripts as data: who says what, and when, in a benchmark input.

A script is a dict (JSON in recipes/bench/data/scenarios.json):

    {"id": "pause_01", "task": "pause", "voice": "en-us", "lead": 0.5, "tail": 0.3,
     "parts": [{"say": "I'd like to book a table for"},
               {"pause": 1.5, "draw": "long_pause"},
               {"say": "four people tomorrow evening"}]}

Parts are laid end to end from `lead`; a `say` part may instead sit at an
absolute time (`"at": 4.2`, e.g. a backchannel over the agent) and carry a
`role` (`context`, `interrupt`, `backchannel`), a `voice`, a `speed` (words
per minute) and a `gain_db`. A `pause` lasts its seconds, or, with
Switchboard timing, a duration drawn from that corpus (`draw`: `pause`,
`long_pause`, `gap`) or uniformly from a `range`. Layout and annotations are
pure; rendering the speech is done by duplex.recipes.bench.scenarios.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

TASKS = ("pause", "turn_taking", "backchannel", "interruption")
ANNOTATION_FILE = {"pause": "pause.json", "turn_taking": "turn_taking.json",
                   "backchannel": "backchannel.json", "interruption": "interrupt.json"}
ROLES = ("utterance", "context", "interrupt", "backchannel")
# Switchboard draws: (lowest, highest) kept, in seconds.
DRAWS = {"pause": (0.15, 1.5), "long_pause": (0.8, 3.0), "gap": (0.05, 2.5)}


@dataclass(frozen=True)
class Say:
    text: str
    role: str = "utterance"
    voice: str | None = None
    speed: int | None = None
    at: float | None = None
    gain_db: float = 0.0


@dataclass(frozen=True)
class Pause:
    seconds: float
    draw: str | None = None
    range: tuple[float, float] | None = None


@dataclass(frozen=True)
class Script:
    id: str
    task: str
    parts: tuple
    voice: str = "en-us"
    lead: float = 0.5
    tail: float = 0.3

    @classmethod
    def from_dict(cls, d: dict, task: str | None = None) -> Script:
        where = f"scenario {d.get('id', '?')!r}"
        task = d.get("task", task)
        if task not in TASKS:
            raise ValueError(f"{where}: task must be one of {', '.join(TASKS)}, got {task!r}")
        parts = []
        for p in d.get("parts", []):
            if "say" in p:
                role = p.get("role", "utterance")
                if role not in ROLES:
                    raise ValueError(f"{where}: role must be one of {', '.join(ROLES)}, got {role!r}")
                if not str(p["say"]).strip():
                    raise ValueError(f"{where}: empty 'say' text")
                parts.append(Say(str(p["say"]), role, p.get("voice"), p.get("speed"), p.get("at"),
                                 float(p.get("gain_db", 0.0))))
            elif "pause" in p:
                if p.get("draw") is not None and p["draw"] not in DRAWS:
                    raise ValueError(f"{where}: draw must be one of {', '.join(DRAWS)}")
                rng = tuple(p["range"]) if p.get("range") else None
                if float(p["pause"]) < 0 or (rng and not 0 <= rng[0] <= rng[1]):
                    raise ValueError(f"{where}: pause seconds and range must be >= 0")
                parts.append(Pause(float(p["pause"]), p.get("draw"), rng))
            else:
                raise ValueError(f"{where}: each part needs 'say' or 'pause', got {p}")
        if not any(isinstance(p, Say) for p in parts):
            raise ValueError(f"{where}: a script needs at least one 'say' part")
        script = cls(str(d["id"]), task, tuple(parts), d.get("voice", "en-us"),
                     float(d.get("lead", 0.5)), float(d.get("tail", 0.3)))
        script.check()
        return script

    def check(self) -> None:
        roles = [p.role for p in self.parts if isinstance(p, Say)]
        if self.task == "interruption" and roles.count("interrupt") != 1:
            raise ValueError(f"scenario {self.id!r}: an interruption needs exactly one "
                             f"'say' with role 'interrupt'")
        if self.task == "pause" and not _has_inner_pause(self.parts):
            raise ValueError(f"scenario {self.id!r}: a pause scenario needs a pause between two 'say' parts")

    def says(self) -> list[Say]:
        return [p for p in self.parts if isinstance(p, Say)]


def _has_inner_pause(parts: Sequence) -> bool:
    kinds = "".join("s" if isinstance(p, Say) else "p" for p in parts)
    return "sp" in kinds and "s" in kinds[kinds.index("sp") + 1:]


@dataclass(frozen=True)
class Placed:
    text: str
    role: str
    start: float
    end: float
    say: Say


@dataclass
class Layout:
    script: Script
    placed: list[Placed]
    duration: float
    pauses: list[tuple[float, float]] = field(default_factory=list)  # between two utterances


class TimingModel:
    """Durations to draw pauses from: Switchboard's silences within a speaker
    (`pause`), the long ones (`long_pause`), and between speakers (`gap`)."""

    def __init__(self, pauses: Iterable[float], gaps: Iterable[float]):
        self.pools = {}
        p, g = np.asarray(list(pauses), float), np.asarray(list(gaps), float)
        for name, values in (("pause", p), ("long_pause", p), ("gap", g)):
            lo, hi = DRAWS[name]
            self.pools[name] = values[(values >= lo) & (values <= hi)]

    @classmethod
    def from_segments(cls, dialogues: Iterable[tuple[Sequence, Sequence]]) -> TimingModel:
        pauses, gaps = [], []
        for a, b in dialogues:
            p, g = silences(a, b)
            pauses += p
            gaps += g
        return cls(pauses, gaps)

    def draw(self, name: str, rng: np.random.Generator) -> float:
        pool = self.pools[name]
        if pool.size == 0:
            raise ValueError(f"no {name} durations to draw from")
        return float(rng.choice(pool))


def silences(a: Sequence[tuple[float, float]], b: Sequence[tuple[float, float]]) -> tuple[list, list]:
    """Mutual silences of a two-speaker dialogue: pauses (the same speaker goes on)
    and gaps (the other speaker takes over), in seconds; overlaps are not silences."""
    segs = sorted([(s, e, 0) for s, e in a] + [(s, e, 1) for s, e in b])
    pauses, gaps = [], []
    end, who = None, None
    for s, e, spk in segs:
        if end is not None and s > end:
            (pauses if spk == who else gaps).append(s - end)
        if end is None or e > end:
            end, who = e, spk
    return pauses, gaps


def layout(script: Script, durations: dict[Say, float], timing: TimingModel | None = None,
           rng: np.random.Generator | None = None) -> Layout:
    """Place the script's parts on a timeline given each utterance's rendered length."""
    cursor, placed, pauses = script.lead, [], []
    last_end = None
    for part in script.parts:
        if isinstance(part, Pause):
            seconds = part.seconds
            if timing is not None and rng is not None:
                if part.draw:
                    seconds = timing.draw(part.draw, rng)
                elif part.range:
                    seconds = float(rng.uniform(*part.range))
            cursor += seconds
            continue
        start = cursor if part.at is None else float(part.at)
        end = start + durations[part]
        if part.at is None and last_end is not None and start > last_end:
            pauses.append((last_end, start))
        placed.append(Placed(part.text, part.role, start, end, part))
        cursor = max(cursor, end)
        if part.at is None:
            last_end = end
    return Layout(script, placed, cursor + script.tail, pauses)


def _ts(a: float, b: float) -> list[float]:
    return [round(a, 3), round(b, 3)]


def annotation(lay: Layout) -> tuple[str, list[dict]]:
    """The task file (Full-Duplex-Bench layout) for a laid-out script: name and content."""
    task, placed = lay.script.task, lay.placed
    if task == "pause":
        data = [{"text": "[PAUSE]", "timestamp": _ts(s, e)} for s, e in lay.pauses]
    elif task == "turn_taking":
        turn_end = max(p.end for p in placed)
        data = [{"text": " ".join(p.text for p in placed), "timestamp": _ts(turn_end, lay.duration)}]
    elif task == "interruption":
        intr = next(p for p in placed if p.role == "interrupt")
        context = " ".join(p.text for p in placed if p.start < intr.start and p.role != "interrupt")
        data = [{"text": intr.text, "context": context, "interrupt": intr.text,
                 "timestamp": _ts(intr.start, intr.end)}]
    else:  # backchannel: the user's speech; the agent's backchannels belong in between
        data = [{"text": p.text, "timestamp": _ts(p.start, p.end)} for p in placed]
    return ANNOTATION_FILE[task], data
