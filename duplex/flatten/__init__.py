"""The flattened speech-text format (REFERENCE §4), pure and sans-I/O.

- `vocab`: the id space (text, control tokens, per-codebook code offsets);
- `layout`: the chunk layouts of the full-duplex stages;
- `text_slots`: word-aligned text slots with `<pad>` / `<epad>`;
- `sequence`: a flattened sequence with loss weights and groups;
- `duplex_layout`: dialogue -> chunks and back;
- `turns`: the turn-based stages (modality alignment, half-duplex).
"""
from .duplex_layout import FlatDialogue, flatten_duplex, unflatten_duplex
from .layout import VARIANTS, ChunkLayout, Kind
from .sequence import FlatSequence, LossGroup, LossWeights, loss_weights
from .text_slots import Word, place_words, read_words
from .turns import half_duplex, modality_alignment, pack, turns, utterances
from .vocab import SPECIAL_TOKENS, FlatVocab

__all__ = [
    "SPECIAL_TOKENS", "VARIANTS", "ChunkLayout", "FlatDialogue", "FlatSequence", "FlatVocab",
    "Kind", "LossGroup", "LossWeights", "Word", "flatten_duplex", "half_duplex",
    "loss_weights", "modality_alignment", "pack", "place_words", "read_words", "turns",
    "unflatten_duplex", "utterances",
]
