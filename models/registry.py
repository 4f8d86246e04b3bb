"""Builds the engines a config names. Imports are lazy: choosing pocketsphinx
never imports faster-whisper, and the test profile never touches the hub."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from duplex.config import Config
from duplex.interfaces import ASR, LLM, TTS
from duplex.turn import TurnTaker

from .perception import Perceiver

log = logging.getLogger(__name__)


def build_asr(cfg: Config) -> ASR:
    engine = cfg.asr.engine
    if engine == "pocketsphinx":
        from .asr_pocketsphinx import PocketsphinxASR

        return PocketsphinxASR(cfg.asr)
    if engine == "whisper":
        from .asr_whisper import WhisperASR

        return WhisperASR(cfg.asr)
    raise ValueError(f"unknown asr.engine {engine!r} (known: whisper, pocketsphinx)")


def build_llm(cfg: Config) -> LLM:
    engine = cfg.llm.engine
    if engine == "hf":
        from .llm_hf import HFChatLLM

        return HFChatLLM(cfg.llm)
    raise ValueError(f"unknown llm.engine {engine!r} (known: hf)")


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

        return VAPPolicy(cfg.turn, cfg.vad) if _takes_vad(VAPPolicy) else VAPPolicy(cfg.turn)
    raise ValueError(f"unknown turn.engine {cfg.turn.engine!r} (known: vap, vad)")


def _takes_vad(cls) -> bool:
    import inspect

    return len(inspect.signature(cls).parameters) >= 2


@dataclass
class Models:
    """The engines of one server process, shared by all its sessions."""

    cfg: Config
    asr: ASR
    llm: LLM
    tts: TTS
    vap: Any = None
    names: dict = field(default_factory=dict)

    def perceiver(self) -> Perceiver:
        """Per-session perception state (VAD state, VAP context)."""
        return Perceiver(build_vad(self.cfg), self.vap.stream(self.cfg.turn.vap_context_s)
                         if self.vap is not None else None)

    def turn_taker(self) -> TurnTaker:
        return build_turn_taker(self.cfg)


def load_models(cfg: Config) -> Models:
    """Load every engine the config names; errors name the model that failed."""
    vap = build_vap_runtime(cfg)
    build_vad(cfg).reset()  # fail now, not at the first connection
    asr, llm, tts = build_asr(cfg), build_llm(cfg), build_tts(cfg)
    names = {"vad": cfg.vad.engine, "turn": cfg.turn.engine,
             "asr": f"{cfg.asr.engine}:{cfg.asr.model}", "llm": f"{cfg.llm.engine}:{cfg.llm.model}",
             "tts": f"{cfg.tts.engine}:{cfg.tts.model}"}
    return Models(cfg, asr, llm, tts, vap, names)
