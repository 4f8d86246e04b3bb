"""Training configuration of the flatten recipe: a dataclass, stage files, overrides.

A stage config is a JSON or TOML file of `TrainConfig` fields (see
recipes/flatten/configs/); command-line flags and `--set key=value` override it.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib

from duplex.config import _coerce  # the same --set conversion as the main config

STAGES = ("alignment", "half", "full", "full_user_text", "full_no_text")
CONFIG_DIR = Path(__file__).resolve().parent / "configs"


@dataclass
class TrainConfig:
    stage: str = "full"  # alignment | half | full | full_user_text | full_no_text
    model: str = "Qwen/Qwen2.5-0.5B"  # base LM (Hub id / dir) or the output of an earlier stage
    codec: str = "kyutai/mimi"
    data: str = ""  # a .jsonl manifest in the moshi-finetune layout
    output: str = "runs/flatten"
    num_codebooks: int = 4
    chunk_ms: int = 160
    text_slots: int = 2  # per chunk
    max_chunks: int = 256  # full-duplex examples: windows of this many chunks (41 s)
    max_tokens: int = 4096  # turn-based examples
    swap_roles: bool = False  # also learn each clip with the user as the agent
    # loss weights (duplex.flatten.LossWeights)
    text_weight: float = 1.0
    text_pad_weight: float = 0.5
    semantic_weight: float = 100.0
    acoustic_weight: float = 1.0
    user_text_weight: float = 0.0
    # optimisation
    lora: bool = True  # False: full fine-tuning
    lora_r: int = 64
    lora_alpha: int = 128
    lora_dropout: float = 0.05
    lora_targets: str = "all-linear"  # or comma-separated module names
    learning_rate: float = 2e-4
    weight_decay: float = 0.0
    warmup_ratio: float = 0.03
    max_steps: int = 1000  # <= 0: train `epochs` epochs
    epochs: float = 1.0
    batch_size: int = 1
    grad_accum: int = 8
    max_grad_norm: float = 1.0
    bf16: str = "auto"  # auto (on GPUs that support it) | true | false
    gradient_checkpointing: bool = True
    save_steps: int = 200
    save_total_limit: int = 2
    logging_steps: int = 10
    seed: int = 0
    device: str = "auto"  # for encoding the data with the codec
    cache_dir: str = ""  # encoded clips; default OUTPUT/codes
    threads: int = 0  # torch CPU threads (0: torch's default)

    def __post_init__(self):
        if self.stage not in STAGES:
            raise ValueError(f"unknown stage {self.stage!r} (known: {', '.join(STAGES)})")
        if self.bf16 not in ("auto", "true", "false"):
            raise ValueError(f"bf16 must be auto, true or false, got {self.bf16!r}")
        for name in ("num_codebooks", "chunk_ms", "max_chunks", "max_tokens", "batch_size",
                     "grad_accum", "lora_r"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")

    @property
    def duplex(self) -> bool:
        return self.stage.startswith("full")


def find_config(name: str) -> Path:
    """A config path, or the name of one in recipes/flatten/configs/ (with or without suffix)."""
    p = Path(name)
    if p.exists():
        return p
    for cand in (CONFIG_DIR / name, CONFIG_DIR / f"{name}.json", CONFIG_DIR / f"{name}.toml"):
        if cand.exists():
            return cand
    known = ", ".join(sorted(c.stem for c in CONFIG_DIR.glob("*.*")))
    raise FileNotFoundError(f"no config file {name!r} (shipped configs: {known})")


def load_train_config(path: str | None = None, sets: list[str] | None = None,
                      **flags: Any) -> TrainConfig:
    """Defaults, then the file, then flags that are not None, then `key=value` strings."""
    values = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    if path:
        p = find_config(path)
        data = tomllib.loads(p.read_text()) if p.suffix == ".toml" else json.loads(p.read_text())
        for key in data:
            if key not in values:
                raise ValueError(f"{p}: unknown key {key!r} (known: {', '.join(sorted(values))})")
        values.update(data)
    values.update({k: v for k, v in flags.items() if v is not None})
    for item in sets or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in values:
            raise ValueError(f"--set expects key=value with a TrainConfig key, got {item!r}")
        values[key] = _coerce(value, values[key])
    return TrainConfig(**values)
