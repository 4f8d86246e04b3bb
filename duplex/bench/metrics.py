"""Full-duplex behaviour metrics, exactly as defined in REFERENCE.md §5.

Inputs are agent words with times (`Word`), agent voice-activity segments
and the task's annotation times, all in seconds on the input's clock. Pure
functions; the runner decides which words belong to which window.

- M4 take-over (`take_over`, `tor`)
- M5 latency (`turn_latency`)
- M6 backchannel (`backchannel_stats`)
- M7 overlap stop / response latency (`stop_latency`, `restart_latency`)
- M8 EVA per-turn timing score (`eva_turn_score`)
- M9 rubric pass rate / score (`rubric_scores`)
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

TURN_MIN_S = 1.0  # M4: an output spanning at least this long takes the turn ...
TURN_MAX_WORDS = 3  # ... as does one with more words than this
BC_MAX_SEGMENT_S = 3.0  # M6: longer agent segments are never backchannels
BC_SHORT_S = 1.0  # M6: a backchannel is shorter than this ...
BC_MAX_WORDS = 2  # ... and has at most this many words


@dataclass(frozen=True)
class Word:
    text: str
    start: float
    end: float

    def to_chunk(self) -> dict:
        return {"text": self.text, "timestamp": [round(self.start, 4), round(self.end, 4)]}


def take_over(words: Sequence[Word]) -> int:
    """M4: 1 iff there is output and (last_end - first_start >= 1 s or more than 3 words)."""
    if not words:
        return 0
    span = words[-1].end - words[0].start
    return int(span >= TURN_MIN_S or len(words) > TURN_MAX_WORDS)


def tor(flags: Iterable[int]) -> float | None:
    """Take-over rate: mean of TO over samples (None for no samples)."""
    flags = list(flags)
    return float(np.mean(flags)) if flags else None


def turn_latency(words: Sequence[Word], turn_end: float) -> float | None:
    """M5: max(0, first agent word start - end of the user's turn), for TO = 1 only."""
    if not take_over(words):
        return None
    return max(0.0, words[0].start - turn_end)


def eva_turn_score(latency_s: float | None) -> float:
    """M8: EVA-Bench per-turn timing score, piecewise linear in the (signed) latency.

    0 at <= -0.5 s, 0.5 at 0, 1 from 0.5 s to 2.0 s, 0 at >= 3.5 s; a turn
    the agent never took (None) scores 0 like an infinite latency.
    """
    if latency_s is None or not math.isfinite(latency_s):
        return 0.0
    return float(np.interp(latency_s, [-0.5, 0.0, 0.5, 2.0, 3.5], [0.0, 0.5, 1.0, 1.0, 0.0]))


def words_in(words: Sequence[Word], start: float, end: float) -> list[Word]:
    """Words that overlap [start, end]."""
    return [w for w in words if w.start <= end and w.end >= start]


@dataclass(frozen=True)
class BackchannelStats:
    to: int  # 1 when some agent segment was more than a backchannel (it took the floor)
    count: int  # agent segments that are backchannels
    frequency: float  # backchannels per second of output
    backchannels: tuple[tuple[float, float], ...]


def backchannel_stats(segments: Sequence[tuple[float, float]], words: Sequence[Word],
                      output_s: float) -> BackchannelStats:
    """M6: agent segments <= 3 s; those < 1 s with <= 2 words are backchannels.

    Any other segment (over 3 s, 1-3 s long, or with more than 2 words) means
    the agent took the floor (TO = 1). frequency = backchannels / output seconds.
    """
    if output_s <= 0:
        raise ValueError(f"output duration must be > 0, got {output_s}")
    bcs, took = [], 0
    for s, e in segments:
        n = len(words_in(words, s, e))
        if e - s <= BC_MAX_SEGMENT_S and e - s < BC_SHORT_S and n <= BC_MAX_WORDS:
            bcs.append((s, e))
        else:
            took = 1
    return BackchannelStats(took, len(bcs), len(bcs) / output_s, tuple(bcs))


def stop_latency(segments: Sequence[tuple[float, float]], user_start: float) -> float | None:
    """M7 t_stop: end of the agent audio playing at the user's speech onset - that onset.

    None when the agent was silent at the onset (there was nothing to stop).
    """
    for s, e in segments:
        if s <= user_start < e:
            return e - user_start
    return None


def restart_latency(segments: Sequence[tuple[float, float]], user_start: float,
                    user_end: float) -> float | None:
    """M7 t_resp: the agent's next audio after it stopped (or after the onset when it
    was silent) - end of the user's speech. Negative when it restarts over the user."""
    stopped = user_start + (stop_latency(segments, user_start) or 0.0)
    later = [s for s, _ in segments if s >= stopped and s > user_start]
    return min(later) - user_end if later else None


def rubric_scores(results: Sequence[Sequence[bool]]) -> dict:
    """M9: APR = mean(all items met), ARS = mean(items met / items), over conversations."""
    graded = [list(r) for r in results if len(r)]
    if not graded:
        return {"n": 0, "apr": None, "ars": None}
    return {"n": len(graded), "apr": float(np.mean([all(r) for r in graded])),
            "ars": float(np.mean([sum(r) / len(r) for r in graded]))}


def summarize(values: Iterable[float | None]) -> dict:
    """n, mean, median and p90 of the defined values (None when there are none)."""
    vals = np.array([v for v in values if v is not None], dtype=float)
    if vals.size == 0:
        return {"n": 0, "mean": None, "median": None, "p90": None}
    return {"n": int(vals.size), "mean": float(vals.mean()), "median": float(np.median(vals)),
            "p90": float(np.percentile(vals, 90))}
