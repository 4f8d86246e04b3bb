"""Duplex training data from ordinary chat data.

Sources (`--data`):
- a JSONL file: one conversation per line, `{"messages": [{"role", "content"}, ...]}`
  (another key with `--messages-field`) or a bare list of messages;
- `builtin`: the small sample shipped beside this file (`sample_chats.jsonl`);
- anything else: a Hugging Face dataset name, e.g. `HuggingFaceH4/ultrachat_200k`
  with `--split train_sft` (needs network or the local datasets cache).

Each conversation becomes one (or more) duplex dialogues of the six kinds
(`duplex.tdm.kinds`), rendered with `duplex.tdm.format.render`: the same
serialisation the engine uses at serving time.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from duplex.tdm.format import DuplexDialogue, SpecialIds, render
from duplex.tdm.kinds import KINDS, make_dialogue

SAMPLE = Path(__file__).with_name("sample_chats.jsonl")


def _messages(record, field: str, where: str) -> list[dict]:
    if isinstance(record, list):
        return record
    if isinstance(record, dict) and field in record:
        return record[field]
    keys = ", ".join(record) if isinstance(record, dict) else type(record).__name__
    raise ValueError(f"{where}: expected a list of messages or an object with {field!r} "
                     f"(got {keys})")


def read_jsonl(path: Path, field: str = "messages") -> list[list[dict]]:
    convs = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not valid JSON ({exc.msg})") from exc
            convs.append(_messages(record, field, f"{path}:{n}"))
    if not convs:
        raise ValueError(f"{path}: no conversations in the file")
    return convs


def load_conversations(source: str, *, split: str = "train", field: str = "messages",
                       limit: int | None = None) -> list[list[dict]]:
    """Chat conversations (lists of messages) from a JSONL path, `builtin`, or a HF dataset."""
    if source == "builtin":
        convs = read_jsonl(SAMPLE, "messages")
    elif Path(source).expanduser().exists():
        convs = read_jsonl(Path(source).expanduser(), field)
    elif source.endswith((".jsonl", ".json")) or source.startswith(("/", "./", "~")):
        raise FileNotFoundError(f"--data: no file at {source}")
    else:
        try:
            import datasets

            ds = datasets.load_dataset(source, split=split)
        except Exception as exc:  # noqa: BLE001 - any loader failure becomes one clear message
            raise ValueError(
                f"--data: cannot load Hugging Face dataset {source!r} split {split!r} ({exc}). "
                "Pass a local JSONL file of {\"messages\": [...]} lines, or `builtin`.") from exc
        if field not in ds.column_names:
            raise ValueError(f"--data {source}: no column {field!r} (columns: {ds.column_names}); "
                             "use --messages-field")
        convs = [list(row) for row in ds[field][: limit or len(ds)]]
    return convs[:limit] if limit else convs


@dataclass
class Example:
    dialogue: DuplexDialogue
    input_ids: list[int]
    labels: list[int]


def make_dialogues(convs: Sequence[list[dict]], tokenizer, *, k: int, kinds: Sequence[str] = KINDS,
                   seed: int = 0, per_conversation: int = 1,
                   system: str | None = None) -> list[DuplexDialogue]:
    """Duplex dialogues, kinds drawn in turn (a kind a conversation cannot host falls back
    to basic)."""
    from duplex.models.tdm.contexts import encode_text

    unknown = set(kinds) - set(KINDS)
    if unknown or not kinds:
        raise ValueError(f"unknown dialogue kinds {sorted(unknown)} (known: {', '.join(KINDS)})")
    rng = random.Random(seed)

    def encode(text: str) -> list[int]:
        return encode_text(tokenizer, text)

    out = []
    for i, conv in enumerate(convs):
        for j in range(per_conversation):
            kind = kinds[(i * per_conversation + j) % len(kinds)]
            donor = convs[rng.randrange(len(convs))] if len(convs) > 1 else None
            try:
                d = make_dialogue(conv, kind, encode=encode, k=k, rng=rng, donor=donor,
                                  system=system)
                if d is None:
                    d = make_dialogue(conv, "basic", encode=encode, k=k, rng=rng, system=system)
            except ValueError as exc:
                raise ValueError(f"conversation {i}: {exc}") from exc
            if d is not None and d.ticks:
                out.append(d)
    if not out:
        raise ValueError("no training dialogue could be made: the conversations have no "
                         "user/assistant pairs")
    return out


def to_example(dialogue: DuplexDialogue, tokenizer, sp: SpecialIds, max_length: int) -> Example:
    """Rendered ids and labels (-100 off the loss mask), cut to max_length tokens."""
    from duplex.models.tdm.contexts import encode_text

    r = render(dialogue, lambda t: encode_text(tokenizer, t), sp)
    return Example(dialogue, r.ids[:max_length], r.labels()[:max_length])


def build_examples(convs: Sequence[list[dict]], tokenizer, *, k: int, max_length: int,
                   kinds: Sequence[str] = KINDS, seed: int = 0, per_conversation: int = 1,
                   system: str | None = None) -> list[Example]:
    sp = SpecialIds.from_tokenizer(tokenizer)
    dialogues = make_dialogues(convs, tokenizer, k=k, kinds=kinds, seed=seed,
                               per_conversation=per_conversation, system=system)
    return [to_example(d, tokenizer, sp, max_length) for d in dialogues]
