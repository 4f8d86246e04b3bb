"""Neural audio codecs behind `duplex.interfaces.Codec`.

`load_codec(name, num_codebooks, device)` takes a Hugging Face id or a local
directory of a transformers codec and picks the wrapper from its
`model_type`: Mimi (`kyutai/mimi`, 24 kHz, 12.5 Hz, the default; exact
streaming encode and decode), EnCodec or DAC (offline models, streamed over a
sliding window of context). `save_random_codec` writes a randomly initialised
codec built from its transformers config, for tests and smoke runs where no
weights can be downloaded.
"""
from __future__ import annotations

from .loading import find_model, load_codec, resolve_device, save_random_codec

__all__ = ["find_model", "load_codec", "resolve_device", "save_random_codec"]
