"""One agent response in flight: its text, sentences, audio and timings."""
from __future__ import annotations

from dataclasses import dataclass, field

from .text import SentenceChunker


@dataclass
class TurnTimes:
    """Wall-clock marks of one user turn -> agent answer (seconds, driver clock)."""

    user_end: float | None = None  # last user speech frame
    end_of_turn: float | None = None  # the turn-taker's decision
    asr_final: float | None = None
    first_token: float | None = None
    first_audio_ready: float | None = None
    first_audio_sent: float | None = None

    def latency_ms(self) -> dict[str, int | None]:
        def span(a, b):
            return None if a is None or b is None else int(round((b - a) * 1000))

        return {
            "endpointing": span(self.user_end, self.end_of_turn),
            "asr_final": span(self.end_of_turn, self.asr_final),
            "llm_first_token": span(self.asr_final, self.first_token),
            "tts_first_audio": span(self.first_token, self.first_audio_ready),
            "total": span(self.user_end, self.first_audio_sent),
        }


@dataclass
class Response:
    gen: int
    id: str
    item_id: str  # the assistant item it produces
    first_chunk_words: int = 4
    text: str = ""
    sentences: list[str] = field(default_factory=list)
    tts_done: int = 0
    llm_done: bool = False
    audio_started: bool = False
    audio_done_sent: bool = False
    times: TurnTimes = field(default_factory=TurnTimes)

    def __post_init__(self):
        self.chunker = SentenceChunker(self.first_chunk_words)

    @property
    def all_synthesized(self) -> bool:
        return self.llm_done and self.tts_done >= len(self.sentences)
