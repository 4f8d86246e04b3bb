"""Turn-taking: policies that read per-frame observations and say when the
user starts and stops, when to take the floor, and whether a sound made
while the agent speaks is an interruption or a backchannel."""
from .base import Frame, TurnEvent, TurnEventKind, TurnTaker, VapOutput

__all__ = ["Frame", "TurnEvent", "TurnEventKind", "TurnTaker", "VapOutput"]
