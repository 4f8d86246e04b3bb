"""`flatten.json`: what a model directory made by `duplex train flatten` holds
besides the Hugging Face model and tokenizer: its id layout, chunk layout,
codec and training stage. The engine reads it to know what the ids mean."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from duplex.flatten import ChunkLayout, FlatVocab, LossWeights

FORMAT = "duplex-flatten/1"
FILENAME = "flatten.json"


@dataclass
class FlattenSpec:
    vocab: FlatVocab
    layout: ChunkLayout
    codec: str  # the codec the model was trained with (Hub id or path)
    stage: str = "full"
    base_model: str = ""
    loss_weights: LossWeights = field(default_factory=LossWeights)

    def to_dict(self) -> dict:
        return {"format": FORMAT, "vocab": self.vocab.to_dict(), "layout": self.layout.to_dict(),
                "codec": self.codec, "stage": self.stage, "base_model": self.base_model,
                "loss_weights": self.loss_weights.to_dict()}

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / FILENAME
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path

    @classmethod
    def load(cls, directory: str | Path) -> FlattenSpec:
        path = Path(directory) / FILENAME
        if not path.exists():
            raise FileNotFoundError(f"{directory} has no {FILENAME}: it is not a model made by "
                                    "`duplex train flatten`")
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"{path}: unknown format {data.get('format')!r} (expected {FORMAT})")
        return cls(FlatVocab.from_dict(data["vocab"]), ChunkLayout.from_dict(data["layout"]),
                   data["codec"], data.get("stage", "full"), data.get("base_model", ""),
                   LossWeights(**data.get("loss_weights", {})))
