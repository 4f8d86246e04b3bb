"""Builds the engines a config names. Imports are lazy: choosing pocketsphinx
never imports faster-whisper, and the test profile never touches the hub."""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from duplex.config import ASRConfig, Config
from duplex.interfaces import ASR, LLM, TTS
from duplex.turn import TurnTaker

from .perception import Perceiver

log = logging.getLogger(__name__)


GIL_HOLDING_ASR = {"pocketsphinx"}  # their decoding stalls the event loop from a thread


def build_asr_engine(cfg: ASRConfig) -> ASR:
    """The engine itself, in this process."""
    if cfg.engine == "pocketsphinx":
        from .asr_pocketsphinx import PocketsphinxASR

        return PocketsphinxASR(cfg)
    if cfg.engine == "whisper":
        from .asr_whisper import WhisperASR

        return WhisperASR(cfg)
    raise ValueError(f"unknown asr.engine {cfg.engine!r} (known: whisper, pocketsphinx)")


def build_asr(cfg: Config) -> ASR:
    """The configured ASR, in child processes when it would hold the GIL (asr.process)."""
    mode = cfg.asr.process
    if mode not in ("auto", "yes", "no"):
        raise ValueError(f"asr.process must be auto, yes or no, not {mode!r}")
    if mode == "yes" or (mode == "auto" and cfg.asr.engine in GIL_HOLDING_ASR):
        from .process_asr import ProcessASR

        return ProcessASR(cfg.asr, cfg.asr.processes)
    return build_asr_engine(cfg.asr)


def build_llm(cfg: Config):
    """A chat LLM (`hf`), or the time-sliced duplex engine (`tdm`, shared by all sessions)."""
    engine = cfg.llm.engine
    if engine == "hf":
        from .llm_hf import HFChatLLM

        return HFChatLLM(cfg.llm)
    if engine == "tdm":
        from .tdm.engine import DuplexEngine

        return DuplexEngine.load(cfg.llm)
    raise ValueError(f"unknown llm.engine {engine!r} (known: hf, tdm)")


def build_tts(cfg: Config) -> TTS:
    engine = cfg.tts.engine
    if engine == "espeak":
        from .tts_espeak import EspeakTTS

        return EspeakTTS(cfg.tts)
    if engine == "piper":
        from .tts_piper import PiperTTS

        return PiperTTS(cfg.tts)
    raise ValueError(f"unknown tts.engine {engine!r} (known: piper, espeak)")


def build_vad(cfg: Config):
    if cfg.vad.engine == "silero":
        from .vad_silero import SileroVAD

        return SileroVAD(cfg.vad.model)
    raise ValueError(f"unknown vad.engine {cfg.vad.engine!r} (known: silero)")


def build_vap_runtime(cfg: Config):
    if cfg.turn.engine != "vap":
        return None
    from .vap.runtime import VAPRuntime

    return VAPRuntime.load(cfg.turn.vap_model or None)


def build_turn_taker(cfg: Config) -> TurnTaker:
    if cfg.turn.engine == "vad":
        from duplex.turn.vad_policy import VADPolicy

        return VADPolicy(cfg.turn, cfg.vad)
    if cfg.turn.engine == "vap":
        from duplex.turn.vap_policy import VAPPolicy

        return VAPPolicy(cfg.turn, cfg.vad, words=load_lexical(cfg))
    raise ValueError(f"unknown turn.engine {cfg.turn.engine!r} (known: vap, vad)")


LEXICAL_WEIGHTS = Path(__file__).resolve().parent / "assets" / "vap" / "lexical.json"


@functools.lru_cache(maxsize=4)
def _lexical(path: str):
    from duplex.turn.lexical import LexicalTurnEnd

    return LexicalTurnEnd.load(path)


def load_lexical(cfg: Config):
    """The lexical end-of-turn weights the VAP policy reads the user's words with
    (None when turn.lexical is off). Loaded once per process and shared: read-only."""
    if not cfg.turn.lexical:
        return None
    return _lexical(str(cfg.turn.lexical_model or LEXICAL_WEIGHTS))


@dataclass
class Models:
    """The engines of one server process, shared by all its sessions."""

    cfg: Config
    asr: ASR | None
    llm: LLM | None
    tts: TTS | None
    vap: Any = None
    names: dict = field(default_factory=dict)
    flatten: Any = None  # the speech-text engine (session.pipeline = "flatten")

    def new_session(self, session_id: str):
        """A fresh core session for one connection, of the configured pipeline."""
        if self.cfg.session.pipeline == "flatten":
            from duplex.flatten_session import FlattenSession

            return FlattenSession(self.cfg, session_id, self.names)
        if self.cfg.llm.engine == "tdm":
            from duplex.duplex_session import DuplexSession

            return DuplexSession(self.cfg, self.turn_taker(), session_id, self.names)
        from duplex.session import Session

        return Session(self.cfg, self.turn_taker(), session_id, self.names)

    def perceiver(self) -> Perceiver:
        """Per-session perception state (VAD state, VAP context)."""
        return Perceiver(build_vad(self.cfg), self.vap.stream(self.cfg.turn.vap_context_s)
                         if self.vap is not None else None)

    def turn_taker(self) -> TurnTaker:
        return build_turn_taker(self.cfg)

    def warmup(self) -> dict[str, float]:
        """Run every engine once, so lazy imports and first-call setup happen now.

        Imports hold the GIL: done during the first turn they stalled the event
        loop by hundreds of milliseconds. Returns seconds spent per engine.
        """
        import threading
        import time

        import numpy as np

        spent = {}
        if self.flatten is not None:
            t = time.perf_counter()
            self.flatten.stream().step(np.zeros(self.flatten.chunk_samples, np.float32))
            return {"flatten": time.perf_counter() - t}
        t = time.perf_counter()
        self.perceiver().process(np.zeros(3200, np.float32), 0, [False] * 10)
        spent["perception"] = time.perf_counter() - t
        t = time.perf_counter()
        stream = self.asr.stream(self.cfg.asr.language)
        stream.feed(np.zeros(8000, np.float32))
        stream.finish()
        spent["asr"] = time.perf_counter() - t
        t = time.perf_counter()
        if self.cfg.llm.engine == "tdm":
            sid = self.llm.open("warm up")
            self.llm.step(sid, "hi", end_of_turn=True, max_tokens=2)
            self.llm.close(sid)
        else:
            messages = [{"role": "system", "content": "warm up"}, {"role": "user", "content": "hi"}]
            for _ in self.llm.generate(messages, cancel=threading.Event(), max_new_tokens=2):
                pass
        spent["llm"] = time.perf_counter() - t
        t = time.perf_counter()
        for _ in self.tts.synthesize("Hello.", voice=self.cfg.tts.voice):
            pass
        spent["tts"] = time.perf_counter() - t
        return spent


def load_models(cfg: Config, warmup: bool = True) -> Models:
    """Load every engine the config names (errors name the model that failed),
    and run each once so the first conversation pays no start-up cost."""
    if cfg.session.pipeline == "flatten":
        from .flatten.engine import FlattenEngine

        models = Models(cfg, None, None, None, None, {"pipeline": "flatten",
                        "flatten": cfg.flatten.model, "codec": cfg.flatten.codec},
                        flatten=FlattenEngine.load(cfg.flatten))
        if warmup:
            models.warmup()
        return models
    if cfg.session.pipeline != "cascade":
        raise ValueError(f"unknown session.pipeline {cfg.session.pipeline!r} (cascade, flatten)")
    vap = build_vap_runtime(cfg)
    build_turn_taker(cfg)  # fail now, not at the first connection (e.g. missing weights)
    build_vad(cfg).reset()
    asr, llm, tts = build_asr(cfg), build_llm(cfg), build_tts(cfg)
    names = {"vad": cfg.vad.engine,
             "turn": cfg.turn.engine + ("+words" if cfg.turn.engine == "vap" and cfg.turn.lexical else ""),
             "asr": f"{cfg.asr.engine}:{cfg.asr.model}",
             "llm": f"{cfg.llm.engine}:{cfg.llm.model}" + (
                 f" ({cfg.llm.mode} mode)" if cfg.llm.engine == "tdm" else ""),
             "tts": f"{cfg.tts.engine}:{cfg.tts.model}"}
    models = Models(cfg, asr, llm, tts, vap, names)
    if warmup:
        spent = models.warmup()
        log.info("warm-up: %s", ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in spent.items()))
    return models
