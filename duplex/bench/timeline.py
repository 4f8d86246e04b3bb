"""What the agent said and when, from a call's events and its agent track.

The agent's voice activity comes from the time-synchronous agent track
(`agent.wav`): frames above an energy threshold, short gaps bridged. Its
words come from the server's own events: each response's text
(`response.output_audio_transcript.*`, cut to what was heard when it was
interrupted: `conversation.item.truncated`) is laid over that response's
voiced stretch on the timeline, each word taking a share of the voiced time
proportional to its length. Servers that send no text can have their words
from an ASR pass instead (`duplex.recipes.bench.asr_words`).

Pure: numpy arrays and event lists in, segments and words out.
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..text import heard_prefix
from .metrics import Word

FRAME_S = 0.02
MERGE_GAP_S = 0.2  # pauses between an agent's words are shorter than this
MIN_SEGMENT_S = 0.06
START_SLACK_S = 0.05  # audio may land a moment before its `output_audio_buffer.started`


def voiced_segments(audio: np.ndarray, rate: int, *, floor: float = 0.003, rel: float = 0.05,
                    merge_gap_s: float = MERGE_GAP_S, min_s: float = MIN_SEGMENT_S,
                    frame_s: float = FRAME_S) -> list[tuple[float, float]]:
    """(start, end) seconds where `audio` is active: frame RMS above
    max(floor, rel * loudest frame), gaps up to `merge_gap_s` bridged, pieces
    shorter than `min_s` dropped."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio, got shape {audio.shape}")
    hop = max(1, round(rate * frame_s))
    n = audio.size // hop
    if n == 0:
        return []
    rms = np.sqrt(np.mean(audio[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1))
    active = rms >= max(floor, rel * float(rms.max()))
    segs: list[list[float]] = []
    for i in np.flatnonzero(active):
        s, e = i * hop / rate, (i + 1) * hop / rate
        if segs and s - segs[-1][1] <= merge_gap_s + 1e-9:
            segs[-1][1] = e
        else:
            segs.append([s, e])
    return [(s, e) for s, e in segs if e - s >= min_s]


@dataclass
class Response:
    """One agent response as the client saw it."""

    id: str
    created_at: float  # first seen (response.created, or its first event)
    started_at: float | None = None  # output_audio_buffer.started
    text: str = ""  # everything generated
    heard: str | None = None  # what was played, when it was cut short
    status: str | None = None
    interrupted_at: float | None = None
    played_ms: float | None = None
    audio_ms: float | None = None
    item_id: str | None = None
    intervals: list[tuple[float, float]] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)

    @property
    def heard_text(self) -> str:
        if self.heard is not None:
            return self.heard
        if self.interrupted_at is not None and self.played_ms is not None and self.audio_ms:
            return heard_prefix(self.text, self.played_ms / self.audio_ms)
        return self.text


def parse_responses(events: Sequence[tuple[float, dict]]) -> list[Response]:
    """Agent responses in order of creation, from (t, event) pairs."""
    by_id: dict[str, Response] = {}
    item_to_resp: dict[str, str] = {}
    done_text: dict[str, str] = {}

    def get(rid: str | None, t: float) -> Response | None:
        if not rid:
            return None
        if rid not in by_id:
            by_id[rid] = Response(rid, created_at=t)
        return by_id[rid]

    for t, ev in events:
        kind = ev.get("type")
        if kind == "response.created":
            get(ev.get("response", {}).get("id"), t)
            continue
        r = get(ev.get("response_id"), t)
        if r is not None and ev.get("item_id"):
            r.item_id = r.item_id or ev["item_id"]
            item_to_resp[ev["item_id"]] = r.id
        if kind == "response.output_audio_transcript.delta" and r is not None:
            r.text += ev.get("delta", "")
        elif kind == "response.output_audio_transcript.done" and r is not None:
            done_text[r.id] = ev.get("transcript", "")
        elif kind == "output_audio_buffer.started" and r is not None and r.started_at is None:
            r.started_at = t
        elif kind == "response.interrupted" and r is not None:
            r.interrupted_at, r.played_ms = t, ev.get("played_ms")
        elif kind == "response.output_audio.done" and r is not None:
            r.audio_ms = ev.get("audio_ms")
        elif kind == "conversation.item.truncated" and ev.get("item_id") in item_to_resp:
            by_id[item_to_resp[ev["item_id"]]].heard = ev.get("transcript", "")
        elif kind == "response.done":
            resp = ev.get("response", {})
            r = get(resp.get("id"), t)
            if r is not None:
                r.status = resp.get("status")
                out = resp.get("output") or []
                if r.status == "cancelled" and r.heard is None and out and "transcript" in out[0]:
                    r.heard = out[0]["transcript"]
    for rid, text in done_text.items():
        if len(text.strip()) >= len(by_id[rid].text.strip()):
            by_id[rid].text = text
    return sorted(by_id.values(), key=lambda r: r.created_at)


def _time_at(pos: float, intervals: Sequence[tuple[float, float]], start_side: bool) -> float:
    """Wall time at voiced-time position `pos` (a word start maps to the next interval's
    beginning when it falls exactly on a boundary)."""
    acc = 0.0
    for s, e in intervals:
        d = e - s
        if pos < acc + d or (not start_side and pos <= acc + d + 1e-12):
            return s + (pos - acc)
        acc += d
    return intervals[-1][1]


def place_words(text: str, intervals: Sequence[tuple[float, float]]) -> list[Word]:
    """Lay `text`'s words over the voiced `intervals`, each word's share of the
    voiced time proportional to its length (plus one for the space after it)."""
    tokens = [t for t in text.split() if re.search(r"\w", t)]
    intervals = [(s, e) for s, e in intervals if e > s]
    if not tokens or not intervals:
        return []
    total = sum(e - s for s, e in intervals)
    weights = np.array([len(t) + 1 for t in tokens], dtype=float)
    scale = total / weights.sum()
    starts = np.concatenate([[0.0], np.cumsum(weights)[:-1]]) * scale
    words = []
    for tok, p, w in zip(tokens, starts, weights):
        a = _time_at(p, intervals, True)
        b = _time_at(p + (w - 1) * scale, intervals, False)
        words.append(Word(tok, a, max(a, b)))
    return words


@dataclass
class AgentTimeline:
    segments: list[tuple[float, float]]  # agent voice activity
    words: list[Word]
    responses: list[Response]

    def words_between(self, start: float, end: float = math.inf) -> list[Word]:
        """Words that start in [start, end)."""
        return [w for w in self.words if start <= w.start < end]

    def cropped(self, end: float) -> AgentTimeline:
        """What a recording `end` seconds long holds (FDB's output.wav is as long as the input)."""
        segs = [(s, min(e, end)) for s, e in self.segments if s < end]
        words = [Word(w.text, w.start, min(w.end, end)) for w in self.words if w.start < end]
        return AgentTimeline(segs, words, self.responses)


def agent_timeline(events: Sequence[tuple[float, dict]], track: np.ndarray,
                   rate: int) -> AgentTimeline:
    """Agent segments from `track` (time-synchronous agent audio), words from events."""
    segments = voiced_segments(track, rate)
    responses = parse_responses(events)
    # A response's audio starts at `output_audio_buffer.started` (at its creation for
    # servers that do not send that event) and ends before the next response's.
    starts = [(r.started_at if r.started_at is not None else r.created_at) - START_SLACK_S
              for r in responses]
    for i, r in enumerate(responses):
        lo = starts[i]
        hi = starts[i + 1] if i + 1 < len(responses) else math.inf
        r.intervals = [(max(s, lo), min(e, hi)) for s, e in segments if e > lo and s < hi]
        r.words = place_words(r.heard_text, r.intervals)
    words = sorted((w for r in responses for w in r.words), key=lambda w: w.start)
    return AgentTimeline(segments, words, responses)


def output_json(words: Sequence[Word]) -> dict:
    """Full-Duplex-Bench's `output.json`: {"text", "chunks": [{"text", "timestamp": [s, e]}]}."""
    return {"text": " ".join(w.text for w in words), "chunks": [w.to_chunk() for w in words]}


def words_from_output_json(data: dict) -> list[Word]:
    """Words of an `output.json` (chunks without a start time are skipped)."""
    if not isinstance(data, dict) or not isinstance(data.get("chunks"), list):
        raise ValueError("output.json must be an object with a 'chunks' list")
    words = []
    for c in data["chunks"]:
        ts = c.get("timestamp") or [None, None]
        if ts[0] is None:
            continue
        end = ts[1] if len(ts) > 1 and ts[1] is not None else ts[0]
        words.append(Word(str(c.get("text", "")).strip(), float(ts[0]), float(end)))
    return sorted(words, key=lambda w: w.start)


def turn_decisions(events: Sequence[tuple[float, dict]]) -> dict:
    """The turn-taking decisions of a call, for comparing two runs of one input:
    speech onsets/offsets (audio ms), turn ends (client time, s), interruptions
    (onset audio ms) and responses started."""
    out = {"speech_started_ms": [], "speech_stopped_ms": [], "committed_s": [],
           "interrupted_ms": [], "responses": 0}
    for t, ev in events:
        kind = ev.get("type")
        if kind == "input_audio_buffer.speech_started":
            out["speech_started_ms"].append(ev.get("audio_start_ms"))
        elif kind == "input_audio_buffer.speech_stopped":
            out["speech_stopped_ms"].append(ev.get("audio_end_ms"))
        elif kind == "input_audio_buffer.committed":
            out["committed_s"].append(round(t, 3))
        elif kind == "response.interrupted":
            out["interrupted_ms"].append(ev.get("audio_start_ms"))
        elif kind == "response.created":
            out["responses"] += 1
    return out


def decisions_agree(a: dict, b: dict, audio_tol_ms: float = 20.0,
                    commit_tol_s: float = 0.3) -> list[str]:
    """Differences between two `turn_decisions` (empty when they agree): the same
    number of each decision, audio times within one frame, turn ends within
    `commit_tol_s` (their time includes the driver's processing delay)."""
    problems = []
    for key, tol in (("speech_started_ms", audio_tol_ms), ("speech_stopped_ms", audio_tol_ms),
                     ("interrupted_ms", audio_tol_ms), ("committed_s", commit_tol_s)):
        x, y = a[key], b[key]
        if len(x) != len(y):
            problems.append(f"{key}: {len(x)} vs {len(y)} ({x} vs {y})")
        elif any(abs(p - q) > tol for p, q in zip(x, y)):
            problems.append(f"{key}: {x} vs {y} (tolerance {tol})")
    if a["responses"] != b["responses"]:
        problems.append(f"responses: {a['responses']} vs {b['responses']}")
    return problems
