"""Finding and building codecs: Hub id or local directory -> Codec wrapper."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from duplex.errors import ModelUnavailable
from duplex.interfaces import Codec

HINT = ("download it on a machine with network access (e.g. `hf download kyutai/mimi --local-dir "
        "mimi`) and pass the directory: `duplex train flatten --codec DIR`, or "
        "--set flatten.codec=DIR for the server")
# Small shapes that keep the codec's rate and frame rate: for tests and smoke runs.
TINY_OVERRIDES: dict[str, dict[str, Any]] = {
    "mimi": dict(hidden_size=64, num_filters=8, num_hidden_layers=1, intermediate_size=128,
                 num_attention_heads=2, num_key_value_heads=2, head_dim=32, codebook_size=32,
                 codebook_dim=16, vector_quantization_hidden_dimension=16, num_quantizers=4,
                 upsample_groups=64),
    "encodec": dict(num_filters=8, hidden_size=32, codebook_size=32, num_lstm_layers=1),
    "dac": dict(encoder_hidden_size=8, decoder_hidden_size=32, hidden_size=32, codebook_size=32,
                n_codebooks=4, codebook_dim=4),
}


def resolve_device(device: str) -> str:
    """"auto" -> "cuda" when a GPU is visible, else "cpu"; anything else as given."""
    if device in ("", "auto"):
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _classes(model_type: str):
    if model_type == "mimi":
        from transformers import MimiConfig, MimiModel

        from .mimi import MimiCodec

        return MimiConfig, MimiModel, MimiCodec
    if model_type == "encodec":
        from transformers import EncodecConfig, EncodecModel

        from .windowed import EncodecCodec

        return EncodecConfig, EncodecModel, EncodecCodec
    if model_type == "dac":
        from transformers import DacConfig, DacModel

        from .windowed import DacCodec

        return DacConfig, DacModel, DacCodec
    raise ValueError(f"unsupported codec type {model_type!r} (known: mimi, encodec, dac)")


def find_model(kind: str, name: str, hint: str, patterns: list[str] | None = None) -> Path:
    """A local directory for `name` (a path, or a Hub id from the cache or downloaded);
    ModelUnavailable with `hint` otherwise."""
    from duplex.models import hub

    try:
        return hub.snapshot(kind, name, patterns or ["*"], hint=hint)
    except ModelUnavailable as exc:  # a bad path skips the hint: give ours
        raise ModelUnavailable(kind, name, exc.reason, hint) from exc


def load_codec(name: str, num_codebooks: int = 4, device: str = "auto") -> Codec:
    """The codec `name` (Hub id or local directory), using its first `num_codebooks` codebooks."""
    from duplex.models import hub

    path = find_model("codec", name, HINT, ["*.json", "*.safetensors"])
    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(path)
    except Exception as exc:
        raise ModelUnavailable("codec", name, f"cannot read its config ({hub.describe(exc)})",
                               HINT) from exc
    _, model_cls, wrapper = _classes(config.model_type)
    try:
        model = model_cls.from_pretrained(path)
    except Exception as exc:
        raise ModelUnavailable("codec", name, f"cannot load its weights ({hub.describe(exc)})",
                               HINT) from exc
    return wrapper(model, num_codebooks=num_codebooks, name=name, device=resolve_device(device))


def save_random_codec(path: str | Path, model_type: str = "mimi", tiny: bool = True,
                      seed: int = 0, **overrides: Any) -> Path:
    """Write a randomly initialised codec (default config, or a tiny one) to `path`.

    Its codes mean nothing, but its shapes, rates and streaming behaviour are
    the real model's, which is what tests and smoke runs need."""
    import torch

    config_cls, model_cls, _ = _classes(model_type)
    kwargs = dict(TINY_OVERRIDES[model_type]) if tiny else {}
    kwargs.update(overrides)
    torch.manual_seed(seed)
    model = model_cls(config_cls(**kwargs)).eval()
    path = Path(path)
    model.save_pretrained(path)
    return path
