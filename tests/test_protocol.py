"""The wire protocol rejects malformed client messages with specific codes."""
import base64
import json

import pytest

from duplex.errors import ProtocolError
from duplex.protocol import (check_audio_bytes, decode_audio_field, parse_event,
                             validate_session_update)


def code_of(fn, *args) -> str:
    with pytest.raises(ProtocolError) as e:
        fn(*args)
    return e.value.code


@pytest.mark.parametrize("text, code", [
    ("{not json", "invalid_json"),
    ("[1, 2]", "invalid_json"),
    ('{"no_type": 1}', "invalid_event"),
    ('{"type": "response.explode"}', "unknown_event"),
    ('{"type": "session.update"}', "invalid_event"),
    ('{"type": "input_audio_buffer.append", "audio": 5}', "invalid_event"),
    ('{"type": "conversation.item.truncate", "item_id": "a", "audio_end_ms": -3}', "invalid_event"),
    ('{"type": "output_audio_buffer.playback", "played_ms": "soon"}', "invalid_event"),
    ('{"type": "conversation.item.create", "item": {"role": "assistant", "content": []}}',
     "invalid_event"),
])
def test_bad_text_messages_get_specific_codes(text, code):
    assert code_of(parse_event, text) == code


def test_event_id_is_echoed_in_errors():
    with pytest.raises(ProtocolError) as e:
        parse_event(json.dumps({"type": "nope", "event_id": "e42"}))
    assert e.value.event_id == "e42"


def test_valid_events_parse():
    ev = parse_event(json.dumps({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}}))
    assert ev["item"]["content"][0]["text"] == "hi"
    assert parse_event('{"type": "response.cancel"}')["type"] == "response.cancel"


def test_audio_bytes_must_be_even_and_bounded():
    check_audio_bytes(b"\0" * 640, 32000)
    assert code_of(check_audio_bytes, b"\0" * 641, 32000) == "invalid_audio"
    assert code_of(check_audio_bytes, b"\0" * 32002, 32000) == "frame_too_large"


def test_base64_audio_is_checked():
    assert decode_audio_field({"audio": base64.b64encode(b"\1\2").decode()}) == b"\1\2"
    assert code_of(decode_audio_field, {"audio": "***"}) == "invalid_audio"


def test_session_update_accepts_known_rates_only():
    assert validate_session_update({"input_sample_rate": 48000, "voice": "en-us"}, None) == {
        "input_sample_rate": 48000, "voice": "en-us"}
    assert code_of(validate_session_update, {"output_sample_rate": 12345}, None) == \
        "invalid_sample_rate"
    assert code_of(validate_session_update, {"input_sample_rate": "16k"}, None) == \
        "invalid_sample_rate"
    assert code_of(validate_session_update, {"instructions": 7}, None) == "invalid_event"
