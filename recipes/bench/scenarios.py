"""`duplex bench make-scenarios`: render benchmark inputs in the Full-Duplex-Bench layout.

    duplex bench make-scenarios --out DIR [--tasks pause,turn_taking,...] [--n N]
        [--timing fixed|switchboard] [--voices en-us,en-gb,piper:NAME] [--seed 0]

Scripts (recipes/bench/data/scenarios.json, or --scripts FILE) place
utterances, pauses and interruptions in time; each is rendered with a voice
(the script's own, else the --voices in turn) and written as
DIR/<task>/<id>/input.wav (16 kHz) + its task file (pause.json,
turn_taking.json, interrupt.json, backchannel.json) + scenario.json (the full
layout). With --timing switchboard, pauses marked `draw` take durations drawn
from Switchboard's silences (REFERENCE §1: pauses median 370 ms, gaps 260 ms).
The multi-turn conversations (data/multichallenge.json) are rendered to
DIR/multi_turn/ in the Audio MultiChallenge format.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from duplex.bench.scripts import TASKS, Layout, Script, TimingModel, annotation, layout
from duplex.errors import ModelUnavailable

from .speech import RATE, Speaker, local_piper_voices

DATA = Path(__file__).resolve().parent / "data"
DEFAULT_VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb-x-rp")


def load_scripts(path: str | Path | None = None) -> dict[str, list[dict]]:
    p = Path(path) if path else DATA / "scenarios.json"
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{p}: cannot read scenario scripts ({e})") from e
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise ValueError(f"{p}: expected {{task: [script, ...]}}")
    unknown = set(data) - set(TASKS)
    if unknown:
        raise ValueError(f"{p}: unknown tasks {sorted(unknown)} (known: {', '.join(TASKS)})")
    return data


def switchboard_timing(n_dialogues: int = 300) -> TimingModel:
    """Pause and gap durations from the first dialogues of the Switchboard timings."""
    from duplex.data.switchboard import load_dialogues

    return TimingModel.from_segments((d.segments(0), d.segments(1))
                                     for d in load_dialogues(limit=n_dialogues))


def render(script: Script, speaker: Speaker, timing: TimingModel | None,
           rng: np.random.Generator) -> tuple[np.ndarray, Layout]:
    """The script's input audio (16 kHz) and its layout."""
    audio_of = {}
    for say in script.says():
        audio_of[say] = speaker.render(say.text, say.voice or script.voice, say.speed)
    lay = layout(script, {s: a.size / RATE for s, a in audio_of.items()}, timing, rng)
    mix = np.zeros(int(np.ceil(lay.duration * RATE)), np.float32)
    for p in lay.placed:
        a = round(p.start * RATE)
        seg = audio_of[p.say] * np.float32(10 ** (p.say.gain_db / 20))
        mix[a:a + seg.size] += seg[: max(0, mix.size - a)]
    return np.clip(mix, -1.0, 1.0), lay


def write_sample(out: Path, script: Script, audio: np.ndarray, lay: Layout) -> Path:
    d = out / script.task / script.id
    d.mkdir(parents=True, exist_ok=True)
    sf.write(d / "input.wav", audio, RATE, subtype="PCM_16")
    name, data = annotation(lay)
    (d / name).write_text(json.dumps(data, indent=1))
    (d / "scenario.json").write_text(json.dumps({
        "id": script.id, "task": script.task, "duration": round(lay.duration, 3),
        "parts": [{"text": p.text, "role": p.role, "start": round(p.start, 3), "end": round(p.end, 3),
                   "voice": p.say.voice or script.voice} for p in lay.placed]}, indent=1))
    return d


def expand(defs: list[dict], task: str, n: int | None, voices: list[str]) -> list[Script]:
    """`n` scripts of a task (all when None): the definitions in turn, each new
    round with the next voice; scripts without a voice of their own take one in turn."""
    if not defs:
        return []
    count = len(defs) if n is None else n
    out = []
    for i in range(count):
        d = dict(defs[i % len(defs)])
        rnd = i // len(defs)
        if rnd:
            d["id"] = f"{d['id']}_{rnd + 1}"
        if "voice" not in defs[i % len(defs)]:
            d["voice"] = voices[i % len(voices)]
        out.append(Script.from_dict(d, task))
    return out


def make_scenarios(out: str | Path, tasks: list[str] | None = None, n: int | None = None,
                   timing: str = "fixed", voices: list[str] | None = None, seed: int = 0,
                   scripts: str | Path | None = None, multi_turn: bool = True,
                   speaker: Speaker | None = None) -> dict[str, int]:
    """Render the scenarios; returns how many samples each task got."""
    out = Path(out)
    defs = load_scripts(scripts)
    tasks = list(tasks or TASKS)
    for t in tasks:
        if t not in TASKS:
            raise ValueError(f"unknown task {t!r} (known: {', '.join(TASKS)})")
    if timing not in ("fixed", "switchboard"):
        raise ValueError("--timing is 'fixed' or 'switchboard'")
    model = switchboard_timing() if timing == "switchboard" else None
    rng = np.random.default_rng(seed)
    speaker = speaker or Speaker()
    voices = list(voices or DEFAULT_VOICES + tuple(local_piper_voices()))
    todo = [s for t in tasks for s in expand(defs.get(t, []), t, n, voices)]
    counts = {t: 0 for t in tasks}
    for script in tqdm(todo, desc="scenarios", unit="sample"):
        audio, lay = render(script, speaker, model, rng)
        write_sample(out, script, audio, lay)
        counts[script.task] += 1
    if multi_turn:
        from .multiturn import builtin_conversations, write_conversations

        convs = builtin_conversations(speaker, limit_per_axis=n)
        write_conversations(convs, out / "multi_turn")
        counts["multi_turn"] = len(convs)
    return counts


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="duplex bench make-scenarios", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="data directory to write")
    p.add_argument("--tasks", default=",".join(TASKS), help="comma-separated subset of " + ",".join(TASKS))
    p.add_argument("--n", type=int, help="samples per task (default: every script once)")
    p.add_argument("--timing", default="fixed", choices=["fixed", "switchboard"])
    p.add_argument("--voices", default="",
                   help="espeak-ng voices and piper:NAME voices, used in turn (default: "
                        + ",".join(DEFAULT_VOICES) + " and any local piper voice)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scripts", help="a scenarios JSON file instead of the built-in one")
    p.add_argument("--no-multi-turn", action="store_true", help="skip the multi-turn conversations")
    args = p.parse_args(argv)
    if args.n is not None and args.n < 1:
        p.error("--n must be >= 1")
    tasks = [t.strip().replace("-", "_") for t in args.tasks.split(",") if t.strip()]
    voices = [v.strip() for v in args.voices.split(",") if v.strip()]
    try:
        counts = make_scenarios(args.out, tasks, args.n, args.timing, voices, args.seed,
                                args.scripts, not args.no_multi_turn)
    except (ValueError, RuntimeError, FileNotFoundError, ModelUnavailable) as e:
        p.exit(2, f"duplex bench make-scenarios: {e}\n")
    print("wrote " + ", ".join(f"{t}: {c}" for t, c in counts.items()) + f" samples to {args.out}")
    return 0
