"""Errors that cross layer boundaries, with messages meant for people."""


class DuplexError(Exception):
    """Base class for errors this package raises on purpose."""


class ModelUnavailable(DuplexError):
    """A model could not be loaded: missing, not downloadable, or broken.

    The message names the model and says how to point to a local copy.
    """

    def __init__(self, kind: str, name: str, reason: str, hint: str = ""):
        self.kind, self.name, self.reason = kind, name, reason
        hint = hint or (
            f"download it on a machine with network access and pass its local path "
            f"(e.g. --set {kind}.model=/path/to/model), or use `--profile test` for the "
            f"offline pipeline-test models"
        )
        super().__init__(f"{kind} model {name!r} is not available: {reason}. To fix: {hint}.")


class ProtocolError(DuplexError):
    """A client sent something the protocol does not allow.

    `code` is the machine-readable error code sent in the `error` event;
    `fatal` tells whether the session can go on.
    """

    def __init__(self, code: str, message: str, *, fatal: bool = False, event_id: str | None = None):
        super().__init__(message)
        self.code, self.message, self.fatal, self.event_id = code, message, fatal, event_id
