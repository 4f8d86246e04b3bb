"""Ordinary multi-turn chat -> duplex training dialogues, in six kinds.

The kinds follow Duplex-UltraChat (REFERENCE.md §3). User messages are cut
into 4-6 word slices, assistant messages into K-token slices (`format`).
The assistant starts answering in the tick of the user's last slice, and it
waits, `<idle>`, through the user's slices and through pauses inside a user
message (silent user ticks), so it learns not to take the floor early.

- basic: every user/assistant pair in turn, with silent gaps between turns.
- generation_termination: the user cuts in on an answer ("okay, stop"): the
  assistant goes `<idle>` in the very tick the cut-in arrives and stays so.
  (In every kind with a cut-in, the assistant is `<idle>` from the cut-in's
  first tick until one silent user tick after it, then may speak again.)
- regeneration: the user cuts in asking for it again ("sorry, start over",
  "shorter please"): it stops, then gives the answer again (or its first
  sentence).
- dialogue_reset: the user cuts in with a question from another
  conversation: it stops and that conversation goes on instead.
- topic_interweaving: the user cuts in with the next question of the same
  conversation: it stops, answers it, then finishes the interrupted answer.
- back_on_topic: during an answer the user either backchannels ("mm-hm"),
  and the assistant keeps talking in that very tick, or makes an aside
  ("hold on a second"): it stops, then resumes where it was cut off.

In half of the cut-in examples the last spoken slice is cut short with
`<cut>`, as the server writes it after rolling unspoken tokens back, so the
model also learns to carry on from a rolled-back history.
"""
from __future__ import annotations

import random
from typing import Sequence

from .format import (
    IDLE_SLICE,
    AssistantSlice,
    DuplexDialogue,
    Encode,
    Tick,
    rollback,
    split_tokens,
    split_words,
)

KINDS = (
    "basic",
    "topic_interweaving",
    "generation_termination",
    "regeneration",
    "dialogue_reset",
    "back_on_topic",
)
DEFAULT_SYSTEM = "You are a helpful voice assistant. Keep answers short and spoken."

STOP_PHRASES = ("Okay, stop.", "That's enough, thanks.", "Alright, I got it, thanks.",
                "Stop please.", "Okay okay, that's fine.", "Never mind, thank you.")
RESTART_PHRASES = ("Sorry, can you start over?", "Wait, say that again from the start.",
                   "Hmm, could you repeat that?", "Sorry, I missed that, again please.")
SHORTER_PHRASES = ("Can you make that shorter?", "Just the short version please.",
                   "Too long, in one sentence please.")
RESET_PREFIXES = ("", "Actually, never mind.", "Forget that.", "Wait, different question.")
BACKCHANNELS = ("mm-hm", "right", "uh-huh", "okay", "I see", "yeah")
ASIDES = ("Sorry, hold on a second.", "One moment, someone is at the door.",
          "Wait, let me grab a pen.", "Hang on, just a second.")
RESUME_PREFIXES = ("As I was saying,", "Okay, so,", "Anyway,")
INTERWEAVE_BRIDGES = ("Back to your earlier question:", "Now, about what you asked before:")


def chat_pairs(messages: Sequence[dict]) -> tuple[str | None, list[tuple[str, str]]]:
    """(system prompt or None, [(user, assistant), ...]) of a chat conversation.

    Accepts an optional leading system message; consecutive messages of one
    role are joined. A trailing user message without an answer is dropped.
    """
    if not isinstance(messages, (list, tuple)) or not messages:
        raise ValueError("a conversation must be a non-empty list of {'role', 'content'} messages")
    system, merged = None, []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or "role" not in msg or "content" not in msg:
            raise ValueError(f"message {i} is not a {{'role', 'content'}} object: {msg!r:.80}")
        role, content = msg["role"], msg["content"]
        if not isinstance(content, str):
            raise ValueError(f"message {i}: content must be a string, got {type(content).__name__}")
        if role == "system":
            if i != 0:
                raise ValueError(f"message {i}: a system message may only come first")
            system = content
            continue
        if role not in ("user", "assistant"):
            raise ValueError(f"message {i}: unknown role {role!r} (system, user, assistant)")
        if not content.strip():
            continue
        if merged and merged[-1][0] == role:
            merged[-1] = (role, merged[-1][1] + " " + content)
        else:
            merged.append((role, content))
    while merged and merged[0][0] == "assistant":
        merged.pop(0)
    pairs = [(merged[i][1], merged[i + 1][1]) for i in range(0, len(merged) - 1, 2)]
    return system, pairs


def first_sentence(text: str) -> str:
    for j, ch in enumerate(text):
        if ch in ".!?" and (j + 1 == len(text) or text[j + 1].isspace()):
            return text[: j + 1]
    return text


class _Timeline:
    """Ticks being built, with the bookkeeping the kinds share."""

    def __init__(self, encode: Encode, k: int, rng: random.Random, pause_p: float):
        self.encode, self.k, self.rng, self.pause_p = encode, k, rng, pause_p
        self.ticks: list[Tick] = []
        self.cut_ins: list[int] = []
        self.backchannels: list[int] = []

    def listen(self, text: str, pauses: bool = True) -> None:
        """The user says `text`, slice by slice; the assistant waits."""
        for n, piece in enumerate(split_words(text, self.rng)):
            if n and pauses and self.rng.random() < self.pause_p:
                self.ticks.append(Tick("", IDLE_SLICE))  # a pause inside the sentence
            self.ticks.append(Tick(piece, IDLE_SLICE))

    def slices(self, text: str) -> list[AssistantSlice]:
        return split_tokens(self.encode(text), self.k)

    def speak(self, slices: Sequence[AssistantSlice]) -> None:
        """The assistant says `slices`, starting in the last tick if it was silent there."""
        slices = list(slices)
        if slices and self.ticks and self.ticks[-1].assistant == IDLE_SLICE:
            self.ticks[-1] = Tick(self.ticks[-1].user, slices.pop(0))
        self.ticks += [Tick("", s) for s in slices]

    def gap(self, most: int = 2) -> None:
        self.ticks += [Tick("", IDLE_SLICE)] * self.rng.randint(0, most)

    def cut_in(self, text: str) -> None:
        """The user talks over the assistant: it stops in the first tick of `text`,
        and waits for one silent tick before it says anything else.

        Half the time the last spoken slice is cut short with `<cut>`, as
        after a server-side rollback of tokens that were never played.
        """
        last = self.ticks[-1].assistant if self.ticks else IDLE_SLICE
        if last.tokens and last.end is None and self.rng.random() < 0.5:
            unspoken = self.rng.randint(1, len(last.tokens))
            self.ticks, _ = rollback(self.ticks, unspoken)
        self.cut_ins.append(len(self.ticks))
        self.listen(text, pauses=False)
        self.ticks.append(Tick("", IDLE_SLICE))

    def dialogue(self, system: str, kind: str) -> DuplexDialogue:
        return DuplexDialogue(system, self.ticks, kind, tuple(self.cut_ins),
                              tuple(self.backchannels))


def _text_slices(answer: list[AssistantSlice]) -> int:
    return sum(1 for s in answer if s.tokens)


def _cut_point(rng: random.Random, answer: list[AssistantSlice]) -> int:
    """How many slices of an answer are said before the cut-in, leaving text unsaid."""
    return rng.randint(1, _text_slices(answer) - 1)


def make_dialogue(
    messages: Sequence[dict],
    kind: str,
    *,
    encode: Encode,
    k: int,
    rng: random.Random,
    donor: Sequence[dict] | None = None,
    system: str | None = None,
    pause_p: float = 0.15,
) -> DuplexDialogue | None:
    """One duplex dialogue of `kind` from a chat conversation.

    Returns None when the conversation cannot host that kind (e.g. no
    answer long enough to be cut into, or no donor for a reset).
    `donor` is another conversation, used by dialogue_reset.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown dialogue kind {kind!r} (known: {', '.join(KINDS)})")
    own_system, pairs = chat_pairs(messages)
    system = system or own_system or DEFAULT_SYSTEM
    if not pairs:
        return None
    tl = _Timeline(encode, k, rng, pause_p)
    answers = [tl.slices(a) for _, a in pairs]
    # the turn where something happens: one whose answer spans >= 2 slices
    long_turns = [i for i, ans in enumerate(answers) if _text_slices(ans) >= 2]
    if kind == "topic_interweaving":
        long_turns = [i for i in long_turns if i + 1 < len(pairs)]
    if kind != "basic" and not long_turns:
        return None
    p = rng.choice(long_turns) if kind != "basic" else len(pairs)

    for i in range(min(p, len(pairs))):  # ordinary turns before the event
        tl.listen(pairs[i][0])
        tl.speak(answers[i])
        tl.gap()
    if kind == "basic":
        return tl.dialogue(system, kind)

    user, _ = pairs[p]
    answer = answers[p]
    j = _cut_point(rng, answer)
    tl.listen(user)
    tl.speak(answer[:j])
    rest_tokens = [t for s in answer[j:] for t in s.tokens]
    after = p + 1  # the next pair of this conversation to continue with

    if kind == "generation_termination":
        tl.cut_in(rng.choice(STOP_PHRASES))
        tl.gap()
        return tl.dialogue(system, kind)

    if kind == "regeneration":
        if rng.random() < 0.5:
            tl.cut_in(rng.choice(RESTART_PHRASES))
            tl.speak(answer)
        else:
            tl.cut_in(rng.choice(SHORTER_PHRASES))
            tl.speak(tl.slices(first_sentence(pairs[p][1])))
    elif kind == "dialogue_reset":
        if not donor:
            return None
        _, donor_pairs = chat_pairs(donor)
        if not donor_pairs:
            return None
        question, reply = donor_pairs[0]
        tl.cut_in(f"{rng.choice(RESET_PREFIXES)} {question}".strip())
        tl.speak(tl.slices(reply))
        pairs, after = donor_pairs, 1
        answers = [tl.slices(a) for _, a in pairs]
    elif kind == "topic_interweaving":
        tl.cut_in(pairs[p + 1][0])
        tl.speak(answers[p + 1])
        tl.ticks.append(Tick("", IDLE_SLICE))
        bridge = tl.encode(rng.choice(INTERWEAVE_BRIDGES)) + rest_tokens
        tl.ticks += [Tick("", s) for s in split_tokens(bridge, k)]
        after = p + 2
    elif kind == "back_on_topic":
        if rng.random() < 0.5:  # a backchannel: keep talking through it
            rest = split_tokens(rest_tokens, k)
            tl.backchannels.append(len(tl.ticks))
            tl.ticks += [Tick(rng.choice(BACKCHANNELS), rest[0])] + [Tick("", s) for s in rest[1:]]
        else:  # an aside: stop, then resume the interrupted answer
            tl.cut_in(rng.choice(ASIDES))
            resumed = tl.encode(rng.choice(RESUME_PREFIXES)) + rest_tokens
            tl.speak(split_tokens(resumed, k))
    tl.gap()
    for i in range(after, len(pairs)):
        tl.listen(pairs[i][0])
        tl.speak(answers[i])
        tl.gap()
    return tl.dialogue(system, kind)
