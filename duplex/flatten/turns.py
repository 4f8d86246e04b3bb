"""The turn-based stages that come before full duplex (OmniFlatten's curriculum).

- modality alignment: single utterances as ASR and TTS tasks
      <|asr|> codes... <|at|> text... <|eot|>        loss on the text and <|eot|>
      <|tts|> text... <|aa|> codes... <|eot|>        loss on the codes and <|eot|>
  (ASR on both speakers' utterances, TTS on the agent's, so the model learns
  to speak in the agent's voice);
- half duplex: the dialogue as alternating turns, all four streams
      <|u|> user codes... <|ut|> user text... <|eot|>
      <|a|> agent text... <|aa|> agent codes... <|eot|>
  loss on the agent's text, codes and the markers it writes.

Codes are frame-major, codebook-minor, as in the chunk layouts. A turn is a
run of one speaker's words in start order (speech over the other speaker
breaks turns: the stages are serialised).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .duplex_layout import Tokenize
from .layout import Kind
from .sequence import FlatSequence, LossWeights, loss_weights
from .text_slots import Word
from .vocab import FlatVocab


class _Builder:
    def __init__(self, vocab: FlatVocab):
        self.vocab = vocab
        self.tokens: list[int] = []
        self.kinds: list[int] = []
        self.codebooks: list[int] = []

    def add(self, ids: Sequence[int], kind: Kind) -> None:
        self.tokens += [int(i) for i in ids]
        self.kinds += [int(kind)] * len(ids)
        self.codebooks += [-1] * len(ids)

    def control(self, name: str, kind: Kind = Kind.CONTROL) -> None:
        self.add([self.vocab.special(name)], kind)

    def codes(self, codes: np.ndarray, kind: Kind) -> None:
        ids = self.vocab.code_ids(codes).T.reshape(-1)  # frame-major
        self.tokens += ids.tolist()
        self.kinds += [int(kind)] * len(ids)
        self.codebooks += list(range(codes.shape[0])) * codes.shape[1]

    def build(self, weights: LossWeights) -> FlatSequence:
        tokens = np.array(self.tokens, np.int64)
        kinds = np.array(self.kinds, np.int8)
        codebooks = np.array(self.codebooks, np.int8)
        w, g = loss_weights(tokens, kinds, codebooks, self.vocab, weights)
        return FlatSequence(tokens, kinds, codebooks, w, g, chunk_len=0)


def utterances(words: Sequence[Word], max_gap_s: float = 1.0,
               max_s: float = 20.0) -> list[list[Word]]:
    """One speaker's words split at pauses longer than max_gap_s (and at max_s)."""
    out: list[list[Word]] = []
    for w in sorted(words, key=lambda w: w.start):
        end = w.end if w.end is not None else w.start
        if out:
            last = out[-1][-1]
            last_end = last.end if last.end is not None else last.start
            if w.start - last_end <= max_gap_s and end - out[-1][0].start <= max_s:
                out[-1].append(w)
                continue
        out.append([w])
    return out


def turns(agent_words: Sequence[Word], user_words: Sequence[Word]) -> list[tuple[str, list[Word]]]:
    """("agent" | "user", words) runs of one speaker, in start order."""
    merged = sorted([(w.start, "agent", w) for w in agent_words] +
                    [(w.start, "user", w) for w in user_words], key=lambda x: (x[0], x[1]))
    out: list[tuple[str, list[Word]]] = []
    for _, who, w in merged:
        if out and out[-1][0] == who:
            out[-1][1].append(w)
        else:
            out.append((who, [w]))
    return out


def _frames(codes: np.ndarray, words: Sequence[Word], frame_rate: float) -> np.ndarray:
    start = int(math.floor(words[0].start * frame_rate))
    last = words[-1]
    end = int(math.ceil((last.end if last.end is not None else last.start) * frame_rate))
    return codes[:, start:max(end, start + 1)]


def _text(words: Sequence[Word], tokenize: Tokenize) -> list[int]:
    return [i for w in words for i in tokenize(w.text)]


def modality_alignment(agent_codes: np.ndarray, user_codes: np.ndarray,
                       agent_words: Sequence[Word], user_words: Sequence[Word], *,
                       vocab: FlatVocab, frame_rate: float, tokenize: Tokenize,
                       weights: LossWeights = LossWeights()) -> list[FlatSequence]:
    """ASR examples from both speakers' utterances, TTS examples from the agent's."""
    out = []
    for codes, words, tts in ((agent_codes, agent_words, True), (user_codes, user_words, False)):
        for utt in utterances(words):
            audio, text = _frames(codes, utt, frame_rate), _text(utt, tokenize)
            if audio.shape[1] == 0 or not text:
                continue
            b = _Builder(vocab)
            b.control("<|asr|>")
            b.codes(audio, Kind.USER_CODE)
            b.control("<|at|>")
            b.add(text, Kind.OUTPUT_TEXT)
            b.control("<|eot|>", Kind.OUTPUT_TEXT)
            out.append(b.build(weights))
            if tts:
                b = _Builder(vocab)
                b.control("<|tts|>")
                b.add(text, Kind.USER_TEXT)
                b.control("<|aa|>")
                b.codes(audio, Kind.AGENT_CODE)
                b.control("<|eot|>", Kind.OUTPUT_TEXT)
                out.append(b.build(weights))
    return out


def half_duplex(agent_codes: np.ndarray, user_codes: np.ndarray, agent_words: Sequence[Word],
                user_words: Sequence[Word], *, vocab: FlatVocab, frame_rate: float,
                tokenize: Tokenize, weights: LossWeights = LossWeights(),
                max_tokens: int = 4096) -> list[FlatSequence]:
    """The dialogue as alternating turns, packed into sequences of at most max_tokens."""
    parts: list[FlatSequence] = []
    for who, words in turns(agent_words, user_words):
        b = _Builder(vocab)
        if who == "user":
            b.control("<|u|>")
            b.codes(_frames(user_codes, words, frame_rate), Kind.USER_CODE)
            b.control("<|ut|>")
            b.add(_text(words, tokenize), Kind.USER_TEXT)
            b.control("<|eot|>")
        else:
            b.control("<|a|>")
            b.add(_text(words, tokenize), Kind.OUTPUT_TEXT)
            b.control("<|aa|>", Kind.OUTPUT_TEXT)
            b.codes(_frames(agent_codes, words, frame_rate), Kind.AGENT_CODE)
            b.control("<|eot|>", Kind.OUTPUT_TEXT)
        parts.append(b.build(weights))
    return pack(parts, max_tokens)


def pack(parts: Sequence[FlatSequence], max_tokens: int) -> list[FlatSequence]:
    """Consecutive parts joined into sequences of at most max_tokens (a longer part is cut)."""
    if max_tokens < 2:
        raise ValueError("max_tokens must be at least 2")
    out, group, size = [], [], 0
    for p in parts:
        p = p.slice(0, max_tokens)
        if group and size + len(p) > max_tokens:
            out.append(FlatSequence.concat(group))
            group, size = [], 0
        group.append(p)
        size += len(p)
    if group:
        out.append(FlatSequence.concat(group))
    return out
