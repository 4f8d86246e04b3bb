"""The one serialisation of a time-sliced duplex (TDM) conversation.

Training (`duplex.recipes.tdm`) and serving (`duplex.models.tdm`) both turn a
conversation into token ids through `render` / `render_header` /
`render_tick` here, so the two cannot drift apart.

A conversation is a system prompt followed by ticks. Each tick is one slice
of time: the user's slice (the text recognised since the last tick, or
nothing) and the assistant's slice (at most K tokens, its terminator
included). Layout, role markers being added special tokens:

    [bos]<|system|>You are ...
    <|user|>Can you recommend some<|assistant|><idle>
    <|user|>English novels to me?<|assistant|>Of course! Here are some
    <|user|><idle><|assistant|>English novels across<cut>
    <|user|>Actually, movies instead<|assistant|><idle>
    <|user|><idle><|assistant|>Sure! Here are some movies<eos>

An assistant slice is one of
- `<idle>`: the assistant stays silent this tick (a stop decision when it
  was speaking);
- 1..K text tokens: it speaks, and may go on in the next tick;
- text tokens then `<eos>`: the response is over (at most K tokens in all);
- text tokens then `<idle>`: it stops talking within the slice (the model
  may write this; training data has `<idle>` only alone);
- a spoken prefix (maybe empty) then `<cut>`: the user interrupted and only
  that prefix was heard. `<cut>` is never predicted: the server writes it
  when it rolls unspoken tokens back (`rollback`), and every later slice of
  that response becomes `<idle>`.

Loss mask: 1 on the assistant's own tokens (text, `<idle>`, `<eos>`),
0 on everything it is given (system prompt, markers, user text, `<cut>`).
Text is encoded slice by slice with `encode(text) -> ids` (no special
tokens added), the same call at training and at serving time.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Sequence

SYSTEM = "<|system|>"
USER = "<|user|>"
ASSISTANT = "<|assistant|>"
IDLE = "<idle>"
EOS = "<eos>"
CUT = "<cut>"
SPECIAL_TOKENS = (SYSTEM, USER, ASSISTANT, IDLE, EOS, CUT)

# How an assistant slice ends (None: K tokens were spoken and more may follow).
END_IDLE, END_EOS, END_CUT = "idle", "eos", "cut"
ENDS = (None, END_IDLE, END_EOS, END_CUT)

Encode = Callable[[str], list[int]]


@dataclass(frozen=True)
class SpecialIds:
    """Token ids of the TDM markers in one tokenizer (plus its BOS, if it uses one)."""

    system: int
    user: int
    assistant: int
    idle: int
    eos: int
    cut: int
    bos: int | None = None

    @classmethod
    def from_tokenizer(cls, tokenizer) -> "SpecialIds":
        """Look the markers up in a Hugging Face tokenizer (they must have been added)."""
        ids = {}
        names = ("system", "user", "assistant", "idle", "eos", "cut")
        for name, token in zip(names, SPECIAL_TOKENS):
            tid = tokenizer.convert_tokens_to_ids(token)
            if tid is None or tid == tokenizer.unk_token_id:
                raise ValueError(
                    f"the tokenizer has no token {token!r}; add the TDM tokens first "
                    "(duplex.models.tdm.loading.add_tdm_tokens)"
                )
            ids[name] = int(tid)
        if len(set(ids.values())) != len(ids):
            raise ValueError(f"TDM markers must map to distinct token ids, got {ids}")
        bos = tokenizer.bos_token_id
        if bos is not None:  # only when the tokenizer puts it in front of every text itself
            probe = tokenizer("a", add_special_tokens=True)["input_ids"]
            bos = int(bos) if probe and probe[0] == bos else None
        return cls(**ids, bos=bos)

    @property
    def stops(self) -> frozenset[int]:
        """Tokens that end an assistant slice early."""
        return frozenset((self.idle, self.eos))


@dataclass(frozen=True)
class AssistantSlice:
    """What the assistant said in one tick: token ids and how the slice ends."""

    tokens: tuple[int, ...] = ()
    end: str | None = END_IDLE

    def __post_init__(self):
        if self.end not in ENDS:
            raise ValueError(f"assistant slice end must be one of {ENDS}, got {self.end!r}")
        if self.end is None and not self.tokens:
            raise ValueError("an open (unterminated) slice needs at least one token")

    @property
    def speaks(self) -> bool:
        return bool(self.tokens)

    def predicted(self) -> int:
        """Number of tokens the model produces for this slice (terminator included)."""
        return len(self.tokens) + (self.end in (END_IDLE, END_EOS))


IDLE_SLICE = AssistantSlice((), END_IDLE)


@dataclass(frozen=True)
class Tick:
    """One time slice: the user's text since the last tick ("" = silent) and the reply."""

    user: str = ""
    assistant: AssistantSlice = IDLE_SLICE


@dataclass
class DuplexDialogue:
    """A whole duplex conversation: a training example, or a session's history.

    `kind` names the dialogue kind it was made as; `cut_ins` are the ticks
    where the user starts to cut in on the speaking assistant (the assistant
    must stop there), `backchannels` the ticks where the user only says
    "mm-hm" and the assistant should keep talking. Both are for evaluation.
    """

    system: str
    ticks: list[Tick] = field(default_factory=list)
    kind: str = "basic"
    cut_ins: tuple[int, ...] = ()
    backchannels: tuple[int, ...] = ()


@dataclass
class Rendered:
    """Token ids with their loss mask; `tick_starts[i]` is where tick i begins."""

    ids: list[int]
    mask: list[int]
    tick_starts: list[int]

    def labels(self, ignore_index: int = -100) -> list[int]:
        """Causal-LM labels (the model shifts them): ids where the mask is 1."""
        return [t if m else ignore_index for t, m in zip(self.ids, self.mask)]


def normalise_user_text(text: str | None) -> str:
    """A user slice as it is encoded: whitespace collapsed ("" = silence)."""
    return " ".join((text or "").split())


def render_header(system: str, encode: Encode, sp: SpecialIds) -> tuple[list[int], list[int]]:
    """`[bos]<|system|>system prompt` (never trained on)."""
    ids = ([sp.bos] if sp.bos is not None else []) + [sp.system]
    text = " ".join(system.split())
    if text:
        ids += encode(text)
    return ids, [0] * len(ids)


def render_user(text: str | None, encode: Encode, sp: SpecialIds) -> list[int]:
    """`<|user|>text<|assistant|>`, with `<idle>` for a silent slice."""
    text = normalise_user_text(text)
    body = encode(text) if text else [sp.idle]
    return [sp.user, *body, sp.assistant]


def render_assistant(slice_: AssistantSlice, sp: SpecialIds) -> tuple[list[int], list[int]]:
    ids = list(slice_.tokens)
    mask = [1] * len(ids)
    if slice_.end == END_IDLE:
        ids.append(sp.idle)
        mask.append(1)
    elif slice_.end == END_EOS:
        ids.append(sp.eos)
        mask.append(1)
    elif slice_.end == END_CUT:
        ids.append(sp.cut)
        mask.append(0)  # written by the server after a barge-in, not chosen by the model
    return ids, mask


def render_tick(tick: Tick, encode: Encode, sp: SpecialIds) -> tuple[list[int], list[int]]:
    user = render_user(tick.user, encode, sp)
    ids, mask = render_assistant(tick.assistant, sp)
    return user + ids, [0] * len(user) + mask


def render(dialogue: DuplexDialogue, encode: Encode, sp: SpecialIds) -> Rendered:
    ids, mask = render_header(dialogue.system, encode, sp)
    starts = []
    for tick in dialogue.ticks:
        starts.append(len(ids))
        t_ids, t_mask = render_tick(tick, encode, sp)
        ids += t_ids
        mask += t_mask
    return Rendered(ids, mask, starts)


def check_slices(ticks: Iterable[Tick], k: int) -> None:
    """Raise if any assistant slice is longer than K tokens (terminator included)."""
    if k < 1:
        raise ValueError(f"slice_tokens (K) must be >= 1, got {k}")
    for i, tick in enumerate(ticks):
        n = tick.assistant.predicted()
        if n > k:
            raise ValueError(f"tick {i}: assistant slice has {n} tokens, more than K={k}")


def assistant_tokens(ticks: Sequence[Tick]) -> int:
    """Number of assistant text tokens in the ticks (the assistant's stream)."""
    return sum(len(t.assistant.tokens) for t in ticks)


def rollback(ticks: Sequence[Tick], unspoken: int) -> tuple[list[Tick], int]:
    """Remove the last `unspoken` assistant text tokens: they were never heard.

    The slice holding the first removed token keeps its spoken prefix and
    ends with `<cut>`; every later slice becomes `<idle>` (user slices stay:
    they were said). Returns the new ticks and the index of the first tick
    that changed (len(ticks) when nothing did).
    """
    if unspoken < 0:
        raise ValueError(f"unspoken token count must be >= 0, got {unspoken}")
    ticks = list(ticks)
    total = assistant_tokens(ticks)
    if unspoken > total:
        raise ValueError(f"cannot roll back {unspoken} tokens: the assistant said only {total}")
    if unspoken == 0:
        return ticks, len(ticks)
    keep = total - unspoken
    seen = 0
    for i, tick in enumerate(ticks):
        n = len(tick.assistant.tokens)
        if seen + n > keep:  # the first removed token is in this slice
            head = tick.assistant.tokens[: keep - seen]
            ticks[i] = replace(tick, assistant=AssistantSlice(head, END_CUT))
            for j in range(i + 1, len(ticks)):
                ticks[j] = replace(ticks[j], assistant=IDLE_SLICE)
            return ticks, i
        seen += n
    raise AssertionError("unreachable: unspoken <= total")


def split_tokens(tokens: Sequence[int], k: int) -> list[AssistantSlice]:
    """A whole response as assistant slices of K tokens, the last ending in `<eos>`.

    `<eos>` counts towards K, so a response whose length is a multiple of K
    gets a last slice of `<eos>` alone.
    """
    if k < 1:
        raise ValueError(f"slice_tokens (K) must be >= 1, got {k}")
    tokens = list(tokens)
    slices, i = [], 0
    while len(tokens) - i >= k:
        slices.append(AssistantSlice(tuple(tokens[i : i + k]), None))
        i += k
    slices.append(AssistantSlice(tuple(tokens[i:]), END_EOS))
    return slices


def split_words(text: str, rng, lo: int = 4, hi: int = 6) -> list[str]:
    """A user message as slices of lo..hi words (the last may be shorter)."""
    if not 1 <= lo <= hi:
        raise ValueError(f"need 1 <= lo <= hi, got {lo}, {hi}")
    words = text.split()
    out, i = [], 0
    while i < len(words):
        n = rng.randint(lo, hi)
        out.append(" ".join(words[i : i + n]))
        i += n
    return out
