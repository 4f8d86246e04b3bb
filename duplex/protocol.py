"""Wire protocol `duplex/1` (docs/protocol.md): parsing and validating client
messages. Pure functions: bytes/str in, values or ProtocolError out."""
from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from . import PROTOCOL_VERSION
from .audio import ACCEPTED_RATES
from .errors import ProtocolError

CLIENT_EVENTS = {
    "session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "conversation.item.create",
    "response.create",
    "response.cancel",
    "conversation.item.truncate",
    "output_audio_buffer.playback",
}
MAX_TEXT_CHARS = 20_000
__all__ = ["PROTOCOL_VERSION", "parse_event", "decode_audio_field", "check_audio_bytes",
           "validate_session_update", "error_event"]


def parse_event(text: str) -> dict:
    """A client text message -> a validated event dict with a known `type`."""
    try:
        event = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise ProtocolError("invalid_json", f"text message is not valid JSON: {e}") from None
    if not isinstance(event, dict):
        raise ProtocolError("invalid_json", "a text message must be a JSON object")
    event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
    kind = event.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("invalid_event", "event has no string `type` field", event_id=event_id)
    if kind not in CLIENT_EVENTS:
        raise ProtocolError("unknown_event", f"unknown event type {kind!r}", event_id=event_id)
    _check_fields(kind, event, event_id)
    return event


def _need(cond: bool, msg: str, event_id: str | None) -> None:
    if not cond:
        raise ProtocolError("invalid_event", msg, event_id=event_id)


def _check_fields(kind: str, ev: dict, eid: str | None) -> None:
    if kind == "session.update":
        _need(isinstance(ev.get("session"), dict), "session.update needs a `session` object", eid)
    elif kind == "input_audio_buffer.append":
        _need(isinstance(ev.get("audio"), str), "input_audio_buffer.append needs base64 `audio`", eid)
    elif kind == "conversation.item.create":
        item = ev.get("item")
        _need(isinstance(item, dict), "conversation.item.create needs an `item` object", eid)
        _need(item.get("role", "user") == "user", "only user items can be created", eid)
        text = item_text(item)
        _need(text is not None, "item needs content [{type: input_text, text}]", eid)
        _need(len(text) <= MAX_TEXT_CHARS, f"item text over {MAX_TEXT_CHARS} characters", eid)
    elif kind == "conversation.item.truncate":
        _need(isinstance(ev.get("item_id"), str), "conversation.item.truncate needs `item_id`", eid)
        ms = ev.get("audio_end_ms")
        _need(isinstance(ms, (int, float)) and not isinstance(ms, bool) and ms >= 0,
              "conversation.item.truncate needs a non-negative `audio_end_ms`", eid)
    elif kind == "output_audio_buffer.playback":
        ms = ev.get("played_ms")
        _need(isinstance(ms, (int, float)) and not isinstance(ms, bool) and ms >= 0,
              "output_audio_buffer.playback needs a non-negative `played_ms`", eid)
        _need(isinstance(ev.get("response_id", ""), str), "`response_id` must be a string", eid)


def item_text(item: dict) -> str | None:
    content = item.get("content")
    if not isinstance(content, list):
        return None
    parts = [c.get("text") for c in content if isinstance(c, dict)
             and c.get("type") in ("input_text", "text") and isinstance(c.get("text"), str)]
    return " ".join(parts) if parts else None


def check_audio_bytes(data: bytes, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise ProtocolError("frame_too_large",
                            f"audio message of {len(data)} bytes is over the maximum of "
                            f"{max_bytes} bytes; send smaller frames (20 ms recommended)")
    if len(data) % 2:
        raise ProtocolError("invalid_audio", f"PCM16 audio needs an even byte count, got {len(data)}")


def decode_audio_field(ev: dict) -> bytes:
    try:
        return base64.b64decode(ev["audio"], validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError("invalid_audio", "`audio` is not valid base64",
                            event_id=ev.get("event_id")) from None


def validate_session_update(session: dict, event_id: str | None) -> dict[str, Any]:
    """Checked subset of a session.update: {instructions, voice, input/output_sample_rate}."""
    out: dict[str, Any] = {}
    for key in ("instructions", "voice"):
        if key in session and session[key] is not None:
            _need(isinstance(session[key], str), f"session.{key} must be a string", event_id)
            _need(len(session[key]) <= MAX_TEXT_CHARS, f"session.{key} is too long", event_id)
            out[key] = session[key]
    for key in ("input_sample_rate", "output_sample_rate"):
        if key in session and session[key] is not None:
            rate = session[key]
            if not isinstance(rate, int) or isinstance(rate, bool) or rate not in ACCEPTED_RATES:
                raise ProtocolError(
                    "invalid_sample_rate",
                    f"session.{key} {rate!r} is not supported; use one of {list(ACCEPTED_RATES)}",
                    event_id=event_id)
            out[key] = rate
    return out


def error_event(code: str, message: str, *, type_: str = "invalid_request_error",
                event_id: str | None = None) -> dict:
    return {"type": "error",
            "error": {"type": type_, "code": code, "message": message, "event_id": event_id}}
