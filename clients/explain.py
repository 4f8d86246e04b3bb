"""Connection failures and close codes in plain words, for the terminal clients.

The browser page has the same table in clients/web/connection.js.
"""
from __future__ import annotations

import asyncio

from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI, WebSocketException

CLOSE_WORDS = {
    1001: "the server is shutting down",
    1008: "the server rejected the access token (pass --token or set DUPLEX_TOKEN to the "
          "token the server was started with)",
    1009: "a message was too big for the server; it closed the conversation",
    1011: "the server hit an internal error and closed the conversation",
    1013: "the server is full (too many conversations at once); try again in a moment",
}
REFUSAL_CODES = {"unauthorized": 1008, "server_full": 1013}
OPEN_ERRORS = (OSError, WebSocketException, ConnectionError, asyncio.TimeoutError)


def describe_close(code: int | None, reason: str = "") -> str | None:
    """Why the server ended the conversation; None for a normal close."""
    if code in (None, 1000):
        return None
    if code in CLOSE_WORDS:
        return CLOSE_WORDS[code]
    return f"the connection to the server was lost (code {code}{': ' + reason if reason else ''})"


def describe_connect_error(exc: BaseException, url: str) -> str:
    """Why a client could not open a session at `url`."""
    event = getattr(exc, "event", None)
    if isinstance(event, dict) and event.get("type") == "error":
        code = event.get("error", {}).get("code")
        if code in REFUSAL_CODES:
            return describe_close(REFUSAL_CODES[code])
        return f"the server refused the session: {event.get('error', {}).get('message', code)}"
    if isinstance(exc, InvalidURI):
        return f"{url!r} is not a WebSocket address (expected ws://HOST:PORT/ws)"
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        return (f"{url} answered HTTP {status} instead of opening a socket; "
                "the duplex socket is at ws://HOST:PORT/ws")
    if isinstance(exc, InvalidHandshake):
        return f"{url} is not a duplex server ({exc})"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return f"the server at {url} did not answer in time"
    if isinstance(exc, OSError):
        why = exc.strerror or str(exc) or type(exc).__name__
        return f"cannot reach the server at {url} ({why}). Is `duplex serve` running?"
    return f"could not open a session at {url}: {exc}"


async def open_or_explain(client, url: str) -> str | None:
    """Open a DuplexClient's session: None when it is open, else why not in plain
    words (`url` as the user gave it: the client's own may carry the token)."""
    try:
        await client.open()
        return None
    except OPEN_ERRORS as e:
        if client.ws is not None:
            await client.ws.close()
        return describe_connect_error(e, url)
