"""Text handling between the LLM and TTS: sentence chunking and cutting a
response down to the words the user heard."""
from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*\s")
_CLAUSE_END = re.compile(r"[,;:—–]\s")


class SentenceChunker:
    """Turns streamed text deltas into speakable chunks.

    A chunk ends at a sentence boundary. The first chunk of a response may
    end early, at a clause boundary once it has `first_chunk_words` words,
    so the first audio does not wait for a long first sentence.
    """

    def __init__(self, first_chunk_words: int = 4, max_chars: int = 400):
        self.first_chunk_words = first_chunk_words
        self.max_chars = max_chars
        self._buf = ""
        self._emitted = 0

    def push(self, delta: str) -> list[str]:
        self._buf += delta
        out = []
        while True:
            cut = self._find_cut()
            if cut is None:
                break
            chunk, self._buf = self._buf[:cut].strip(), self._buf[cut:]
            if chunk:
                out.append(chunk)
                self._emitted += 1
        return out

    def flush(self) -> list[str]:
        chunk, self._buf = self._buf.strip(), ""
        if _speakable(chunk):
            self._emitted += 1
            return [chunk]
        return []

    def _find_cut(self) -> int | None:
        m = _SENTENCE_END.search(self._buf)
        if m:
            return m.end()
        if self._emitted == 0 and self.first_chunk_words > 0:
            for m in _CLAUSE_END.finditer(self._buf):
                if len(self._buf[: m.start()].split()) >= self.first_chunk_words:
                    return m.end()
        if len(self._buf) > self.max_chars:  # no punctuation at all: cut at a space
            space = self._buf.rfind(" ", 0, self.max_chars)
            return space + 1 if space > 0 else self.max_chars
        return None


def _speakable(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def heard_prefix(text: str, fraction: float) -> str:
    """The words of `text` heard when `fraction` of its audio was played.

    Audio is assumed to be spread evenly over characters; a word counts as
    heard only when its end was reached (what was cut mid-word was not said).
    """
    if fraction >= 1.0:
        return text
    if fraction <= 0.0:
        return ""
    limit = fraction * len(text)
    words = []
    for m in re.finditer(r"\S+", text):
        if m.end() <= limit:
            words.append(m.group())
        else:
            break
    return " ".join(words)
