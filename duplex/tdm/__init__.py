"""Time-sliced duplex (TDM) conversations: the serialisation shared by
training and serving (`format`), and the dialogue kinds that turn ordinary
chat into duplex training examples (`kinds`). Pure logic: no model, no I/O."""
from .format import (
    ASSISTANT,
    CUT,
    EOS,
    IDLE,
    IDLE_SLICE,
    SPECIAL_TOKENS,
    SYSTEM,
    USER,
    AssistantSlice,
    DuplexDialogue,
    Rendered,
    SpecialIds,
    Tick,
    render,
    render_header,
    render_tick,
    rollback,
    split_tokens,
    split_words,
)
from .kinds import KINDS, chat_pairs, make_dialogue

__all__ = [
    "ASSISTANT", "CUT", "EOS", "IDLE", "IDLE_SLICE", "SPECIAL_TOKENS", "SYSTEM", "USER",
    "AssistantSlice", "DuplexDialogue", "KINDS", "Rendered", "SpecialIds", "Tick", "chat_pairs",
    "make_dialogue", "render", "render_header", "render_tick", "rollback", "split_tokens",
    "split_words",
]
