"""The flattened speech-text duplex model at inference: `FlattenEngine` (see
`engine` for the contract with the server), the model directory's
`flatten.json` (`spec`), masked sampling, word <-> text-id helpers."""
from .engine import FlattenEngine, FlattenStream, StepOutput
from .spec import FlattenSpec

__all__ = ["FlattenEngine", "FlattenSpec", "FlattenStream", "StepOutput"]
