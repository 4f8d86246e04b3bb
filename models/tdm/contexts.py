"""What a session's model context is, in each mode: the token ids it should
hold, how a tick extends them, and how a barge-in rolls them back.

`DuplexContext` (mode "duplex") keeps the conversation as
`duplex.tdm.format` ticks, and its ids are always exactly
`render(dialogue)`: the serialisation the training recipe uses.
`TurnContext` (mode "turn") keeps chat messages and renders them with the
tokenizer's chat template; the model answers only when told that the
user's turn ended.

Both keep `ids` as the target; the engine syncs each session's KV cache to
it by cropping to the longest common prefix and prefilling the rest, so
edits at the end (a rollback) cost only the edited tail.
"""
from __future__ import annotations

import copy

from duplex.models.llm_hf import IncrementalDetokenizer

from duplex.tdm.format import (
    END_EOS,
    END_IDLE,
    AssistantSlice,
    DuplexDialogue,
    SpecialIds,
    Tick,
    assistant_tokens,
    normalise_user_text,
    render,
    render_tick,
    render_user,
    rollback,
)

SPEAK, IDLE, EOS = "speak", "idle", "eos"


def encode_text(tokenizer, text: str) -> list[int]:
    """Plain text -> ids, never reading markers inside it as special tokens."""
    if not text:
        return []
    return tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]


class SpokenText(IncrementalDetokenizer):
    """The assistant's text stream, with the number of characters each token added.

    Rollbacks are given in characters (what the server knows it played);
    this maps them back to tokens.
    """

    def __init__(self, tokenizer):
        super().__init__(tokenizer)
        self.chars: list[int] = []

    def push(self, token_id: int) -> str:
        delta = super().push(token_id)
        self.chars.append(len(delta))
        return delta

    def tokens_for_chars(self, unspoken_chars: int) -> int:
        """How many tokens at the end hold the last `unspoken_chars` characters.

        A token only partly spoken counts as unspoken: the context keeps only
        tokens whose text was heard in full.
        """
        removed = n = 0
        while n < len(self.chars) and removed < unspoken_chars:
            removed += self.chars[-1 - n]
            n += 1
        return n

    def drop(self, n: int) -> None:
        """Forget the last n tokens (rolled back)."""
        keep = max(0, len(self.ids) - max(0, n))
        del self.ids[keep:], self.chars[keep:]
        self.read = keep
        self.prefix = max(0, keep - 1)  # one token of left context for the next delta


class _Snapshots:
    """Undo for a step that failed half-way (the model raised)."""

    _fields: tuple[str, ...] = ()

    def snapshot(self) -> dict:
        return {f: copy.copy(getattr(self, f)) for f in self._fields}

    def restore(self, snap: dict) -> None:
        for f, v in snap.items():
            setattr(self, f, v)


class DuplexContext(_Snapshots):
    """Mode "duplex": the model hears every tick and decides speak / idle / stop."""

    _fields = ("ids", "tick_starts", "ticks", "_user")

    def __init__(self, tokenizer, sp: SpecialIds, system: str, max_tokens: int):
        self.tok, self.sp, self.max_tokens = tokenizer, sp, max_tokens
        self.system = system
        self.ticks: list[Tick] = []
        self._user = ""
        self._rerender(0)

    def encode(self, text: str) -> list[int]:
        return encode_text(self.tok, text)

    @property
    def stops(self) -> frozenset[int]:
        return self.sp.stops

    @property
    def dialogue(self) -> DuplexDialogue:
        return DuplexDialogue(self.system, list(self.ticks))

    def _rerender(self, first_tick: int) -> None:
        if first_tick == 0:
            r = render(self.dialogue, self.encode, self.sp)
            self.ids, self.tick_starts = r.ids, r.tick_starts
            return
        del self.ids[self.tick_starts[first_tick]:], self.tick_starts[first_tick:]
        for tick in self.ticks[first_tick:]:
            self.tick_starts.append(len(self.ids))
            self.ids += render_tick(tick, self.encode, self.sp)[0]

    def set_ticks(self, ticks: list[Tick]) -> None:
        """Start from a given history (e.g. an evaluation prefix)."""
        self.ticks = list(ticks)
        self._rerender(0)

    def begin(self, user: str | None, end_of_turn: bool, budget: int) -> int:
        """Append `<|user|>slice<|assistant|>`; the model then writes up to `budget` tokens.

        `end_of_turn` is not part of the duplex serialisation: the model
        decides from the text alone.
        """
        self._trim()
        self._user = normalise_user_text(user)
        self.tick_starts.append(len(self.ids))
        self.ids += render_user(self._user, self.encode, self.sp)
        return budget

    def finish(self, tokens: list[int]) -> tuple[str, list[int]]:
        """Record the slice the model wrote; returns (state, its text tokens)."""
        end, text = None, list(tokens)
        if text and text[-1] == self.sp.idle:
            end, text = END_IDLE, text[:-1]
        elif text and text[-1] == self.sp.eos:
            end, text = END_EOS, text[:-1]
        self.ticks.append(Tick(self._user, AssistantSlice(tuple(text), end)))
        self.ids += tokens  # == render_assistant(slice): the slice is what was sampled
        return {END_IDLE: IDLE, END_EOS: EOS}.get(end, SPEAK), text

    def rollback(self, unspoken_tokens: int) -> int:
        """Drop the last unspoken assistant tokens (see `format.rollback`); returns how many."""
        n = min(unspoken_tokens, assistant_tokens(self.ticks))
        ticks, first = rollback(self.ticks, n)
        if first < len(ticks):
            self.ticks = ticks
            self._rerender(first)
        return n

    def _trim(self) -> None:
        """Keep the context under max_tokens by dropping the oldest ticks (re-prefilled once)."""
        if len(self.ids) <= self.max_tokens or not self.ticks:
            return
        header, target, drop = self.tick_starts[0], self.max_tokens * 3 // 4, 0
        while (drop < len(self.ticks) - 1
               and header + len(self.ids) - self.tick_starts[drop] > target):
            drop += 1
        self.ticks = self.ticks[drop:]
        self._rerender(0)


class TurnContext(_Snapshots):
    """Mode "turn": a plain chat model behind its chat template.

    User slices are collected into the user's message; when the turn ends
    (`end_of_turn`) the template is rendered with the assistant's turn
    opened and the answer is decoded K tokens per step until it ends.
    """

    _fields = ("messages", "heard", "answer", "answering", "ids", "_answer_start")

    def __init__(self, tokenizer, system: str, *, stops: frozenset[int], max_new_tokens: int,
                 history_turns: int):
        self.tok, self.stops = tokenizer, stops
        self.max_new_tokens, self.history_turns = max_new_tokens, history_turns
        self.messages: list[dict] = [{"role": "system", "content": system}] if system else []
        self.heard: list[str] = []  # user slices of the turn in progress
        self.answer: list[int] = []  # text tokens of the current (or last) answer
        self.answering = False
        self.ids: list[int] = []
        self._answer_start = 0

    def _prompt(self) -> list[int]:
        system = [m for m in self.messages if m["role"] == "system"]
        rest = [m for m in self.messages if m["role"] != "system"]
        if self.history_turns and len(rest) > self.history_turns:
            rest = rest[-self.history_turns:]
            while rest and rest[0]["role"] == "assistant":
                rest.pop(0)
        text = self.tok.apply_chat_template(system + rest, tokenize=False,
                                            add_generation_prompt=True)
        return self.tok(text, add_special_tokens=False)["input_ids"]

    def begin(self, user: str | None, end_of_turn: bool, budget: int) -> int:
        text = normalise_user_text(user)
        if text:
            self.heard.append(text)
        if end_of_turn:
            if self.answering:  # a new turn while answering: the old answer stands as is
                self._close_answer()
            self.messages.append({"role": "user", "content": " ".join(self.heard)})
            self.heard, self.answer, self.answering = [], [], True
            self.ids = self._prompt()
            self._answer_start = len(self.ids)
        if not self.answering:
            return 0
        return max(0, min(budget, self.max_new_tokens - len(self.answer)))

    def finish(self, tokens: list[int]) -> tuple[str, list[int]]:
        self.ids += tokens
        text = [t for t in tokens if t not in self.stops]
        self.answer += text
        if (tokens and tokens[-1] in self.stops) or len(self.answer) >= self.max_new_tokens:
            self._close_answer()
            return EOS, text
        return SPEAK, text

    def _close_answer(self) -> None:
        content = self.tok.decode(self.answer, skip_special_tokens=True).strip()
        self.messages.append({"role": "assistant", "content": content})
        self.answering = False

    def rollback(self, unspoken_tokens: int) -> int:
        """Cut the answer in progress (or the last one, if nothing came after it) to what
        was heard."""
        if not self.answering:
            if not self.messages or self.messages[-1]["role"] != "assistant" or self.heard:
                return 0
            self.messages.pop()  # reopened, closed again below with the heard part
        n = min(unspoken_tokens, len(self.answer))
        del self.answer[len(self.answer) - n:]
        del self.ids[self._answer_start + len(self.answer):]
        self._close_answer()
        return n
