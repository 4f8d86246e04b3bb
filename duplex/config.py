"""Configuration: plain dataclasses, named profiles, file and CLI overrides.

A config is built from a profile (`default`, `test`), then a TOML/JSON file,
then `--set section.key=value` overrides. Every engine is chosen here, so an
engine can be swapped without touching code.
"""
from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class VADConfig:
    engine: str = "silero"  # silero | energy (energy: a threshold on RMS, for tests of the core)
    threshold: float = 0.5  # speech starts when p >= threshold ...
    neg_threshold: float = 0.35  # ... and continues while p >= neg_threshold (hysteresis)
    model: str = ""  # path to a Silero ONNX file; empty = the one inside pip `silero-vad`


@dataclass
class TurnConfig:
    engine: str = "vap"  # vap | vad
    min_speech_ms: int = 200  # speech shorter than this is not a turn (and never interrupts)
    end_silence_ms: int = 500  # vad: silence that ends a turn
    hangover_ms: int = 60  # silence before SPEECH_END is reported
    interrupt_min_ms: int = 200  # user speech over the agent that counts as barge-in (vad)
    # vap policy
    vap_model: str = ""  # path to a VAP .onnx; empty = the checkpoint shipped in duplex.models
    vap_context_s: float = 5.0  # bounded context of the streaming model
    # vap (+ words) defaults: the pace of a 500 ms silence timeout with fewer take-overs in
    # holds and a shorter mean gap on Switchboard (recipes/vap/words_compare.py; the patient
    # VAP-only setting of the VAP report: shift 0.6, hold 0.2, vap_end_silence_ms 700)
    shift_threshold: float = 0.5  # P(agent next) above which a pause is a shift: answer early
    min_gap_ms: int = 100  # earliest take-over after the user goes silent
    max_silence_ms: int = 1200  # safety net: take the floor after this much silence anyway
    backchannel_max_ms: int = 1000  # user sound over the agent up to this long can be a backchannel
    pause_on_overlap: bool = True  # hold agent audio while an overlap is undecided
    resume_silence_ms: int = 300  # quiet after a short overlap before the held agent resumes
    hold_threshold: float = 0.0  # vap: below this P(shift) a silence is a predicted hold: wait ...
    vap_end_silence_ms: int = 500  # ... otherwise take the floor after this much silence
    user_turn_threshold: float = 0.5  # vap: P(user speaks 0.6-2 s ahead) above which overlap is a turn
    vap_interrupt_ms: int = 400  # vap: earliest barge-in, when the model predicts a user turn
    backchannel_threshold: float = 0.6  # vap: P(backchannel) above which overlap does not pause the agent
    bc_opportunity_threshold: float = 0.105  # vap: P(agent backchannel) that makes an "mm-hm" moment
    bc_opportunity_gap_ms: int = 4000  # vap: at most one backchannel opportunity per this long
    # vap + words: the user's turn so far (ASR partials) scored by the lexical end-of-turn
    # model shipped beside the VAP checkpoint (duplex/turn/lexical.py)
    lexical: bool = True  # use the words when the weights are there
    lexical_model: str = ""  # path to the weights JSON; empty = the shipped one
    words_hold_threshold: float = 0.2  # P(turn over | words) below this: unfinished, wait ...
    unfinished_max_silence_ms: int = 2000  # ... up to this much silence
    words_shift_threshold: float = 0.4  # P(turn over | words) from this: finished, answer ...
    finished_gap_ms: int = 300  # ... after this much silence unless VAP projects a hold


@dataclass
class ASRConfig:
    engine: str = "whisper"  # whisper | pocketsphinx
    model: str = "base.en"  # faster-whisper size name, Hugging Face id or local CTranslate2 dir
    device: str = "auto"
    compute_type: str = "default"
    language: str | None = "en"
    partial_interval_ms: int = 500  # whisper: re-decode the growing utterance this often
    beam_size: int = 1
    # Run the engine in child processes: "auto" does it for engines that hold the
    # GIL while decoding (pocketsphinx), "yes"/"no" force it.
    process: str = "auto"
    processes: int = 1


@dataclass
class LLMConfig:
    engine: str = "hf"  # hf (a chat model; turn mode) | tdm (time-sliced duplex) | echo (tests)
    model: str = "Qwen/Qwen2.5-0.5B-Instruct"  # Hugging Face id or local directory
    device: str = "auto"
    dtype: str = "auto"
    max_new_tokens: int = 120
    temperature: float = 0.7
    top_p: float = 0.9
    seed: int | None = None
    history_turns: int = 20  # messages kept in the prompt (the system prompt always)
    # tdm (time-sliced duplex decoding)
    mode: str = "turn"  # turn | duplex
    slice_s: float = 0.5  # tick period in duplex mode
    slice_tokens: int = 10  # K: assistant tokens per slice
    batch_window_ms: float = 5.0  # tdm: wait this long for other sessions' slices to batch them
    max_batch: int = 16  # tdm: most sessions decoded in one forward pass
    max_context_tokens: int = 4096  # tdm duplex: older ticks are dropped beyond this


@dataclass
class TTSConfig:
    engine: str = "piper"  # piper | espeak
    model: str = "en_US-lessac-medium"  # piper voice name, .onnx path, or a directory of voices
    voice: str | None = None  # espeak-ng voice (e.g. en-us) or piper speaker
    speed: float = 1.0
    first_chunk_words: int = 4  # flush the first chunk early at a clause boundary after this many words


@dataclass
class FlattenConfig:
    """The end-to-end speech-text engine (replaces ASR+LLM+TTS when used)."""

    model: str = ""  # a model directory made by `duplex train flatten`
    codec: str = "kyutai/mimi"  # Hub id or local copy of the codec the model was trained with
    num_codebooks: int = 4  # must match the model (checked at load)
    chunk_ms: int = 160  # must match the model (checked at load)
    device: str = "auto"
    dtype: str = "auto"  # auto (bfloat16 on GPU, float32 on CPU) | float32 | bfloat16 | float16
    input_rate: int = 16_000  # rate of the user audio given to FlattenStream.step
    temperature: float = 0.8  # agent audio codes; 0 = greedy
    top_k: int = 250
    text_temperature: float = 0.7  # agent text slots; 0 = greedy
    text_top_k: int = 25
    seed: int | None = None
    max_context_s: float = 120.0  # older chunks are dropped (re-prefill) beyond this


@dataclass
class SessionConfig:
    instructions: str = (
        "You are a helpful voice assistant. Answer in one or two short spoken sentences."
    )
    pipeline: str = "cascade"  # cascade (ASR -> LLM -> TTS) | flatten (speech-text model)
    output_sample_rate: int = 24_000
    playout_lead_ms: int = 200  # how far ahead of real time agent audio is sent
    max_frame_ms: int = 1000  # largest binary audio message accepted (per message)
    send_vap: bool = True  # send per-frame turn-taking probabilities (throttled)
    vap_event_interval_ms: int = 100


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None  # when set, clients must present it
    max_sessions: int = 16
    workers: int = 4  # threads for model calls
    queue_size: int = 64  # bound of every per-session queue


@dataclass
class Config:
    profile: str = "default"
    vad: VADConfig = field(default_factory=VADConfig)
    turn: TurnConfig = field(default_factory=TurnConfig)
    asr: ASRConfig = field(default_factory=ASRConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    tts: TTSConfig = field(default_factory=TTSConfig)
    flatten: FlattenConfig = field(default_factory=FlattenConfig)
    session: SessionConfig = field(default_factory=SessionConfig)
    server: ServerConfig = field(default_factory=ServerConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# The pipeline-test profile: everything offline and small. The LLM is a tiny
# transformers model with random weights, built locally: it babbles. It is
# for testing the pipeline, never for talking to.
PROFILES: dict[str, dict[str, Any]] = {
    "default": {},
    "test": {
        "asr": {"engine": "pocketsphinx", "model": "en-us"},
        "llm": {"engine": "hf", "model": "tiny-random", "max_new_tokens": 24, "temperature": 0.0,
                "seed": 0},
        "tts": {"engine": "espeak", "model": "espeak-ng", "voice": "en-us"},
        "session": {"output_sample_rate": 24_000},
    },
}


def _coerce(value: str, current: Any) -> Any:
    """Turn a --set string into the type of the field it replaces."""
    if isinstance(current, bool):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected a boolean, got {value!r}")
    if isinstance(current, int) and not isinstance(current, bool):
        return int(value)
    if isinstance(current, float):
        return float(value)
    if value.lower() in ("none", "null"):
        return None
    return value


def _apply(cfg: Config, overrides: dict[str, Any], source: str) -> None:
    for section, values in overrides.items():
        if section == "profile":
            continue
        target = getattr(cfg, section, None)
        if target is None or not dataclasses.is_dataclass(target) or not isinstance(values, dict):
            raise ValueError(f"{source}: unknown config section {section!r}")
        names = {f.name for f in dataclasses.fields(target)}
        for key, value in values.items():
            if key not in names:
                raise ValueError(
                    f"{source}: unknown key {section}.{key} (known: {', '.join(sorted(names))})"
                )
            setattr(target, key, value)


def load_config(
    profile: str = "default", path: str | Path | None = None, sets: list[str] | None = None
) -> Config:
    """Build a config: profile, then file (TOML or JSON), then `section.key=value` strings."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r} (known: {', '.join(PROFILES)})")
    cfg = Config(profile=profile)
    _apply(cfg, PROFILES[profile], f"profile {profile}")
    if path:
        p = Path(path)
        text = p.read_text()
        data = tomllib.loads(text) if p.suffix == ".toml" else json.loads(text)
        _apply(cfg, data, str(p))
    for item in sets or []:
        key, sep, value = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot:
            raise ValueError(f"--set expects section.key=value, got {item!r}")
        target = getattr(cfg, section, None)
        if target is None or not dataclasses.is_dataclass(target) or not hasattr(target, name):
            raise ValueError(f"--set: unknown key {key!r}")
        setattr(target, name, _coerce(value, getattr(target, name)))
    return cfg
