"""Multi-turn audio challenge (M9), in the Audio MultiChallenge format.

A conversation is a row with `id`, `axis`, `user_turn_{i}_audio`,
`user_turn_{i}_transcript`, `assistant_turn_{i}_transcript` (the dataset's
reference answers, kept for reading) and `rubric` (yes/no items about the
final assistant turn). Rows come from a .json / .jsonl file, a directory
holding one, a `datasets` directory saved with `save_to_disk`, or parquet
files (the real dataset: see the README). Audio is a path (relative to the
file), a `datasets` audio dict ({"array", "sampling_rate"} or {"bytes"} /
{"path"}); when missing, the transcript is rendered with espeak-ng.

Each conversation is played to one session: a user turn, then silence until
the agent's answer has finished playing, then the next turn. The agent's
answer to each turn is what it was heard saying; a judge LLM grades the
rubric items against the final answer, and APR / ARS are reported per axis.
"""
from __future__ import annotations

import asyncio
import concurrent.futures as cf
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from duplex.audio import resample
from duplex.bench import metrics as M
from duplex.bench.timeline import parse_responses, voiced_segments
from duplex.record import CallRecord

from .judge import messages_for
from .runner import full_track

DATA = Path(__file__).resolve().parent / "data" / "multichallenge.json"
GAP_S = 1.0  # silence between the end of an answer and the next user turn
MAX_ANSWER_S = 20.0  # the next turn comes after this long even if the agent is still talking
FIRST_TAIL_S = 6.0  # in-process: silence first tried after a turn (doubled while the agent talks on)


@dataclass
class Turn:
    text: str
    audio: np.ndarray
    rate: int
    reference: str = ""

    @property
    def duration(self) -> float:
        return self.audio.size / self.rate


@dataclass
class Conversation:
    id: str
    axis: str
    turns: list[Turn]
    rubric: list[str]
    extra: dict = field(default_factory=dict)


def parse_rubric(value, where: str) -> list[str]:
    """A rubric as a list of item texts (list of str / of {"criterion"|"item"|"text"|...},
    a JSON string of either, or one item per line)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = [line.strip(" -*\t") for line in value.splitlines() if line.strip(" -*\t")]
    if isinstance(value, str):  # a JSON string holding one item
        value = [value]
    if isinstance(value, dict):
        value = value.get("items") or value.get("rubric") or list(value.values())
    items = []
    for v in value or []:
        if isinstance(v, dict):
            v = next((v[k] for k in ("criterion", "item", "text", "description", "rubric") if k in v), None)
        if isinstance(v, str) and v.strip():
            items.append(v.strip())
    if not items:
        raise ValueError(f"{where}: no rubric items")
    return items


def load_audio(value, base: Path, where: str) -> tuple[np.ndarray, int]:
    try:
        if isinstance(value, dict) and value.get("array") is not None:
            audio, rate = np.asarray(value["array"], np.float32), int(value["sampling_rate"])
        elif isinstance(value, dict) and value.get("bytes"):
            audio, rate = sf.read(io.BytesIO(value["bytes"]), dtype="float32", always_2d=True)
        elif isinstance(value, (dict, str)):
            path = Path(value["path"] if isinstance(value, dict) else value)
            audio, rate = sf.read(path if path.is_absolute() else base / path, dtype="float32",
                                  always_2d=True)
        else:
            raise ValueError(f"unsupported audio value of type {type(value).__name__}")
    except Exception as e:
        raise ValueError(f"{where}: cannot read audio ({e})") from e
    return (audio.mean(axis=1) if audio.ndim == 2 else audio), rate


def conversation_from_row(row: dict, base: Path, speaker=None) -> Conversation:
    cid = str(row.get("id", "?"))
    where = f"conversation {cid}"
    turns, i = [], 1
    while f"user_turn_{i}_transcript" in row or f"user_turn_{i}_audio" in row:
        text = str(row.get(f"user_turn_{i}_transcript") or "")
        audio = row.get(f"user_turn_{i}_audio")
        if audio is not None:
            a, rate = load_audio(audio, base, f"{where} turn {i}")
        elif speaker is not None and text:
            a, rate = speaker.render(text), 16_000
        else:
            raise ValueError(f"{where}: turn {i} has neither audio nor a transcript to render")
        turns.append(Turn(text, a, rate, str(row.get(f"assistant_turn_{i}_transcript") or "")))
        i += 1
    if not turns:
        raise ValueError(f"{where}: no user_turn_1_audio / user_turn_1_transcript")
    if not row.get("axis"):
        raise ValueError(f"{where}: no axis")
    return Conversation(cid, str(row["axis"]), turns, parse_rubric(row.get("rubric"), where))


def _rows(path: Path) -> tuple[list[dict], Path]:
    if path.is_dir():
        if (path / "dataset_info.json").is_file() or (path / "state.json").is_file():
            import datasets

            return list(datasets.load_from_disk(str(path))), path
        files = sorted(path.glob("*.jsonl")) + sorted(path.glob("*.json")) + sorted(path.glob("*.parquet"))
        if not files:
            raise FileNotFoundError(f"{path}: no conversations (.jsonl, .json, .parquet or a saved dataset)")
        return _rows(files[0])
    if path.suffix == ".parquet":
        import datasets

        return list(datasets.load_dataset("parquet", data_files=str(path), split="train")), path.parent
    try:
        text = path.read_text()
        rows = [json.loads(line) for line in text.splitlines() if line.strip()] \
            if path.suffix == ".jsonl" else json.loads(text)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read conversations ({e})") from e
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a list of conversations")
    return rows, path.parent


def load_conversations(path: str | Path, speaker=None, limit: int | None = None) -> list[Conversation]:
    rows, base = _rows(Path(path))
    return [conversation_from_row(r, base, speaker) for r in rows[:limit]]


def builtin_conversations(speaker, limit_per_axis: int | None = None) -> list[Conversation]:
    """The self-made sample set (a few conversations per axis), rendered with espeak-ng."""
    rows, seen = [], {}
    for row in json.loads(DATA.read_text()):
        seen[row["axis"]] = seen.get(row["axis"], 0) + 1
        if limit_per_axis is None or seen[row["axis"]] <= limit_per_axis:
            rows.append(row)
    return [conversation_from_row(r, DATA.parent, speaker) for r in rows]


def write_conversations(convs: list[Conversation], out: Path) -> Path:
    """conversations.jsonl with user_turn_{i}_audio paths to WAVs under audio/."""
    (out / "audio").mkdir(parents=True, exist_ok=True)
    with open(out / "conversations.jsonl", "w") as f:
        for c in convs:
            row = {"id": c.id, "axis": c.axis, "rubric": c.rubric}
            for i, t in enumerate(c.turns, 1):
                rel = f"audio/{c.id}_turn_{i}.wav"
                sf.write(out / rel, t.audio, t.rate, subtype="PCM_16")
                row[f"user_turn_{i}_audio"] = rel
                row[f"user_turn_{i}_transcript"] = t.text
                if t.reference:
                    row[f"assistant_turn_{i}_transcript"] = t.reference
            f.write(json.dumps(row) + "\n")
    return out / "conversations.jsonl"


# ---------------------------------------------------------------- playing
def _mix(turns: list[Turn], starts: list[float], tail_s: float, rate: int = 16_000) -> np.ndarray:
    end = starts[-1] + turns[len(starts) - 1].duration + tail_s
    out = np.zeros(int(np.ceil(end * rate)), np.float32)
    for t, s in zip(turns, starts):
        a = resample(t.audio, t.rate, rate)
        i = round(s * rate)
        out[i:i + a.size] += a[: out.size - i]
    return out


def _answer_end(conv: Conversation, starts: list[float], backend) -> tuple[CallRecord, float]:
    """Play turns 1..len(starts) with silence after the last one, longer until the agent
    has stopped talking in it (or MAX_ANSWER_S); the record and when the last answer ended."""
    i = len(starts) - 1
    turn_end = starts[i] + conv.turns[i].duration
    tail = FIRST_TAIL_S
    while True:
        audio = _mix(conv.turns, starts, tail)
        record = backend.run(audio, 16_000)
        segs = voiced_segments(full_track(record), record.output_rate)
        ends = [e for s, e in segs if s >= starts[i]]
        end = max([turn_end] + ends)
        if end < audio.size / 16_000 - GAP_S or tail >= MAX_ANSWER_S:
            return record, end
        tail = min(MAX_ANSWER_S, tail * 2)


def play_in_process(conv: Conversation, backend) -> tuple[CallRecord, list[float]]:
    """Virtual clock: the input is fixed up front, so turn i+1's time is found by
    replaying turns 1..i with silence after them and seeing when the answer ended."""
    starts = [0.0]
    while True:
        record, end = _answer_end(conv, starts, backend)
        if len(starts) == len(conv.turns):
            return record, starts
        starts.append(end + GAP_S)


async def play_socket(conv: Conversation, backend) -> tuple[CallRecord, list[float]]:
    """Real time: each turn is sent when the agent has finished answering the previous one."""
    from duplex.clients.session_client import DuplexClient

    async with DuplexClient(backend.url, backend.token, backend.open_timeout) as c:
        backend.model_names = c.session.get("models")
        stop = asyncio.Event()
        first = conv.turns[0]
        call = asyncio.create_task(c.call(first.audio, first.rate, realtime=True,
                                          tail_s=MAX_ANSWER_S + GAP_S + 5, stop=stop))
        while c.record is None:
            await asyncio.sleep(0.01)
        starts = [0.0]
        for i, turn in enumerate(conv.turns):
            if i:
                starts.append(c.now())
                c.inject(turn.audio, turn.rate)
            await _answered(c, starts[i] + turn.duration)
            await asyncio.sleep(GAP_S)
        stop.set()
        return await call, starts


def play_all(convs: list[Conversation], backend, concurrency: int = 1,
             done=lambda: None) -> list[tuple[CallRecord, list[float]]]:
    """Play every conversation (`concurrency` at once); (record, turn starts) in order."""
    if hasattr(backend, "arun"):  # a socket backend
        async def main():
            gate = asyncio.Semaphore(max(1, concurrency))

            async def one(conv):
                async with gate:
                    played = await play_socket(conv, backend)
                done()
                return played

            return await asyncio.gather(*(one(c) for c in convs))

        return asyncio.run(main())
    with cf.ThreadPoolExecutor(max(1, concurrency)) as pool:
        futures = [pool.submit(play_in_process, c, backend) for c in convs]
        for _ in cf.as_completed(futures):
            done()
        return [f.result() for f in futures]


async def _answered(c, turn_end: float) -> None:
    """Until the agent's answer after `turn_end` has finished playing (or MAX_ANSWER_S)."""
    while c.now() < turn_end + MAX_ANSWER_S and not c.closed.is_set():
        later = [r for r in parse_responses(c.record.events)
                 if r.created_at > turn_end - 0.5]
        if later and c.now() > turn_end:
            last = later[-1]
            stopped = any(e.get("type") == "output_audio_buffer.stopped"
                          and e.get("response_id") == last.id for _, e in c.record.events)
            if stopped or last.status in ("failed", "cancelled"):
                return
        await asyncio.sleep(0.05)


def answers(record: CallRecord, conv: Conversation, starts: list[float]) -> list[str]:
    """What the agent was heard saying after each user turn."""
    out = []
    responses = parse_responses(record.events)
    for i, s in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else float("inf")
        texts = [r.heard_text.strip() for r in responses
                 if s <= r.created_at < end and r.heard_text.strip()]
        out.append(" ".join(texts))
    return out


def grade(conv: Conversation, said: list[str], judge) -> list[bool | None]:
    context = [(t.text, a) for t, a in zip(conv.turns[:-1], said[:-1])]
    context.append((conv.turns[-1].text, ""))
    return [judge.verdict(messages_for(context, said[-1], item)) for item in conv.rubric]


def result(conv: Conversation, record: CallRecord, starts: list[float], judge) -> dict:
    said = answers(record, conv, starts)
    res = {"task": "multi_turn", "id": conv.id, "axis": conv.axis, "turn_starts_s": starts,
           "user": [t.text for t in conv.turns], "answers": said, "rubric": conv.rubric}
    if judge is not None:
        verdicts = grade(conv, said, judge)
        res["verdicts"] = verdicts
        res["met"] = [bool(v) for v in verdicts]  # an unparsable verdict counts as not met
    return res


def summarize(results: list[dict], judge_name: str | None) -> dict:
    graded = [r for r in results if "met" in r]
    out = {"n": len(results), "judge": judge_name, **{k: v for k, v in M.rubric_scores(
        [r["met"] for r in graded]).items() if k != "n"}}
    out["unparsed_verdicts"] = sum(v is None for r in graded for v in r["verdicts"])
    out["by_axis"] = {}
    for axis in sorted({r["axis"] for r in results}):
        sc = M.rubric_scores([r["met"] for r in graded if r["axis"] == axis])
        out["by_axis"][axis] = {"n": sum(r["axis"] == axis for r in results),
                                "apr": sc["apr"], "ars": sc["ars"]}
    return out
