"""duplex: full-duplex spoken dialogue.

`duplex` itself is the sans-I/O core: session state machines, turn-taking
policies, the wire protocol and data formats. They take audio frames,
timestamps and model results and return actions; they never touch a socket,
a clock or a thread. `duplex.models`, `duplex.server`, `duplex.clients` and
`duplex.recipes` are the layers around it.
"""

__version__ = "0.1.0"
PROTOCOL_VERSION = "duplex/1"
