"""Agent words from an ASR pass over the agent track (`--words asr`), for
servers that send no text: faster-whisper (through duplex.models) with word
timestamps, run on each stretch of agent audio separately so the silences
in between cannot make Whisper invent words."""
from __future__ import annotations

import numpy as np

from duplex.audio import resample
from duplex.bench.metrics import Word
from duplex.bench.timeline import voiced_segments

PAD_S = 0.2  # context kept around each stretch
JOIN_GAP_S = 1.0  # stretches closer than this are transcribed together


class WhisperWords:
    def __init__(self, model: str = "base.en", device: str = "auto", compute_type: str = "default",
                 language: str | None = "en"):
        from duplex.models.asr_whisper import WhisperASR

        from duplex.config import ASRConfig

        self.asr = WhisperASR(ASRConfig(engine="whisper", model=model, device=device,
                                        compute_type=compute_type, language=language))
        self.language = language

    def __call__(self, track: np.ndarray, rate: int) -> list[Word]:
        audio = resample(np.asarray(track, np.float32), rate, 16_000)
        words = []
        for s, e in voiced_segments(audio, 16_000, merge_gap_s=JOIN_GAP_S):
            a = max(0.0, s - PAD_S)
            piece = audio[int(a * 16_000): int((e + PAD_S) * 16_000)]
            segments, _ = self.asr.model.transcribe(
                piece, language=self.language, beam_size=1, temperature=0.0, word_timestamps=True,
                vad_filter=False, condition_on_previous_text=False)
            for seg in segments:
                for w in seg.words or []:
                    if w.word.strip():
                        words.append(Word(w.word.strip(), float(a + w.start), float(a + max(w.start, w.end))))
        return sorted(words, key=lambda w: w.start)
