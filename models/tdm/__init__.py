"""Time-sliced duplex (TDM) decoding: `DuplexEngine` serves every session of a
server process with per-session KV caches and batched slices."""
from .engine import DuplexEngine, SliceResult

__all__ = ["DuplexEngine", "SliceResult"]
