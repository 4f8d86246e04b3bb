"""Full-Duplex-Bench sample directories: find them, read them, write outputs.

A sample is a directory with `input.wav` and a task file:
- v1: `pause.json`, `turn_taking.json` or `interrupt.json` (a list of
  {"text", "timestamp": [start, end]}; interrupt entries also carry
  "context" and "interrupt"), or a backchannel sample (`backchannel.json`
  from `duplex bench make-scenarios`, or only `input.wav` in a folder named
  *backchannel*, as FDB's ICC set);
- v1.5: `metadata.json` ({"context_text", "current_turn_text",
  "timestamps": [start, end]}) in a category folder: `user_interruption`
  samples are scored as interruptions, the other categories
  (`user_backchannel`, `talking_to_other`, `background_speech`) as `overlap`.

The system under test writes `output.wav` beside `input.wav`: the agent's
audio at the times it played, exactly as long as the input and at its rate,
and `output.json` ({"text", "chunks": [{"text", "timestamp"}]}) from the
server's text, so FDB's own evaluator can score it.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from duplex.audio import resample
from duplex.bench.metrics import Word
from duplex.bench.timeline import output_json

TASKS = ("turn_taking", "pause", "backchannel", "interruption", "overlap")
MAX_DEPTH = 4


@dataclass
class Sample:
    task: str
    dir: Path
    version: str = "v1"
    category: str = ""
    spans: list[tuple[float, float]] = field(default_factory=list)  # the task's timestamps
    text: str = ""
    context: str = ""

    @property
    def id(self) -> str:
        return self.dir.name

    @property
    def input_wav(self) -> Path:
        return self.dir / "input.wav"

    def load_input(self) -> tuple[np.ndarray, int]:
        """The input as float32 mono and its rate."""
        try:
            audio, rate = sf.read(self.input_wav, dtype="float32", always_2d=True)
        except Exception as e:
            raise ValueError(f"{self.input_wav}: cannot read audio ({e})") from e
        if audio.shape[0] == 0:
            raise ValueError(f"{self.input_wav}: empty audio")
        return audio.mean(axis=1), rate

    def duration(self) -> float:
        info = sf.info(self.input_wav)
        return info.frames / info.samplerate

    # what the metrics need ------------------------------------------------
    @property
    def turn_end(self) -> float:
        return self.spans[0][0]

    @property
    def user_span(self) -> tuple[float, float]:
        """interruption / overlap: the user's speech over the agent."""
        return self.spans[0]


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e


def _spans(entries, path: Path) -> list[tuple[float, float]]:
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: expected a non-empty list of {{'text', 'timestamp': [start, end]}}")
    out = []
    for e in entries:
        ts = e.get("timestamp") if isinstance(e, dict) else None
        if not isinstance(ts, (list, tuple)) or not ts or ts[0] is None:
            raise ValueError(f"{path}: entry without a timestamp: {e}")
        end = ts[1] if len(ts) > 1 and ts[1] is not None else ts[0]
        out.append((float(ts[0]), float(end)))
    return out


def read_sample(d: Path) -> Sample | None:
    """The sample in directory `d`, or None when `d` is not one."""
    d = Path(d)
    if not (d / "input.wav").is_file():
        return None
    if (d / "pause.json").is_file():
        return Sample("pause", d, spans=_spans(_read_json(d / "pause.json"), d / "pause.json"))
    if (d / "turn_taking.json").is_file():
        p = d / "turn_taking.json"
        data = _read_json(p)
        return Sample("turn_taking", d, spans=_spans(data, p), text=str(data[0].get("text", "")))
    if (d / "interrupt.json").is_file():
        p = d / "interrupt.json"
        data = _read_json(p)
        first = data[0] if isinstance(data, list) and data else {}
        return Sample("interruption", d, spans=_spans(data, p),
                      text=str(first.get("interrupt", first.get("text", ""))),
                      context=str(first.get("context", "")))
    if (d / "metadata.json").is_file():
        p = d / "metadata.json"
        meta = _read_json(p)
        ts = meta.get("timestamps") if isinstance(meta, dict) else None
        if not isinstance(ts, list) or len(ts) < 2:
            raise ValueError(f"{p}: a v1.5 metadata.json needs \"timestamps\": [start, end]")
        category = d.parent.name
        task = "interruption" if "interrupt" in category else "overlap"
        return Sample(task, d, "v1.5", category, [(float(ts[0]), float(ts[1]))],
                      str(meta.get("current_turn_text", "")), str(meta.get("context_text", "")))
    if (d / "backchannel.json").is_file():
        p = d / "backchannel.json"
        return Sample("backchannel", d, spans=_spans(_read_json(p), p))
    if any("backchannel" in part for part in d.parts[-3:]):
        return Sample("backchannel", d)
    return None


def find_samples(root: str | Path, tasks: tuple[str, ...] = TASKS) -> dict[str, list[Sample]]:
    """Samples under `root` (a sample, a task folder or a data folder), by task."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"--data {root}: no such directory")
    found: dict[str, list[Sample]] = {t: [] for t in tasks}
    for dirpath, dirnames, filenames in os.walk(root):
        depth = len(Path(dirpath).relative_to(root).parts)
        dirnames[:] = sorted(n for n in dirnames if not n.startswith(".")) if depth < MAX_DEPTH else []
        if "input.wav" not in filenames:
            continue
        sample = read_sample(Path(dirpath))
        if sample is None:
            warnings.warn(f"{dirpath}: input.wav without a task file; skipped")
        elif sample.task in found:
            found[sample.task].append(sample)
    return found


def write_outputs(sample: Sample, agent: np.ndarray, agent_rate: int, words: list[Word]) -> Path:
    """`output.wav` (time-synchronous, as long as the input, at its rate) and
    `output.json` beside the sample's input. For interruptions, output.json
    holds only what follows the interruption, as FDB's transcription step does."""
    info = sf.info(sample.input_wav)
    track = resample(np.asarray(agent, np.float32), agent_rate, info.samplerate)
    n = info.frames
    track = np.pad(track[:n], (0, max(0, n - track.size)))
    out = sample.dir / "output.wav"
    try:
        sf.write(out, track, info.samplerate, subtype="PCM_16")
        if sample.task == "interruption":
            words = [w for w in words if w.start >= sample.user_span[1]]
        (sample.dir / "output.json").write_text(json.dumps(output_json(words), indent=1))
    except OSError as e:
        raise OSError(f"cannot write the outputs beside {sample.input_wav} ({e}); "
                      f"use --no-fdb-output for read-only data") from e
    return out
