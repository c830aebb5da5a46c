"""chan_websocket's control messages: events parsed to types, commands built; bad input is a
ValueError that names what is wrong, an unknown event a value of its own."""

from __future__ import annotations

import json

import pytest

from ari_offload.media.ws_messages import (
    FLUSH_MEDIA,
    MAX_COMMAND_BYTES,
    AsteriskError,
    DtmfEnd,
    MarkProcessed,
    MediaStart,
    MediaXoff,
    MediaXon,
    QueueDrained,
    Status,
    UnknownEvent,
    command,
    mark_media,
    parse_event,
)

# As Asterisk 22.10.1 sent them on the test bed (f(json)).
MEDIA_START = (
    '{"event":"MEDIA_START","connection_id":"ceb82128-c15a-4fa4-aa19-965f52f0eac0",'
    '"channel":"WebSocket/INCOMING/0x7f3d54009010","channel_id":"probe-media",'
    '"format":"slin16","optimal_frame_size":640,"ptime":20,"channel_variables":{}}'
)
STATUS = (
    '{"event":"STATUS","channel_id":"probe-media","queue_length":150,"xon_level":800,'
    '"xoff_level":900,"queue_full":false,"bulk_media":false,"media_paused":false}'
)


def event(name: str, **fields: object) -> str:
    return json.dumps({"event": name, "channel_id": "aoff-media-1", **fields})


def test_the_events_asterisk_sends_are_parsed() -> None:
    assert parse_event(MEDIA_START) == MediaStart("slin16", 640, 20)
    assert parse_event(STATUS) == Status(150, False)
    assert parse_event(event("MEDIA_MARK_PROCESSED", correlation_id="7")) == MarkProcessed("7")
    assert parse_event(event("DTMF_END", digit="#")) == DtmfEnd("#")
    assert parse_event(event("MEDIA_XOFF")) == MediaXoff()
    assert parse_event(event("MEDIA_XON")) == MediaXon()
    assert parse_event(event("QUEUE_DRAINED")) == QueueDrained()
    text = "Unable to parse JSON command"
    assert parse_event(event("ERROR", error_text=text)) == AsteriskError(text)


def test_an_event_a_later_asterisk_may_add_is_unknown_not_an_error() -> None:
    assert parse_event(event("MEDIA_BUFFERING_COMPLETED")) == UnknownEvent(
        "MEDIA_BUFFERING_COMPLETED"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("MEDIA_XOFF", "not JSON: 'MEDIA_XOFF'"),
        ("", "not JSON"),
        ('["MEDIA_XON"]', "not a JSON object"),
        ('{"command":"FLUSH_MEDIA"}', "no 'event' name"),
        ('{"event":7}', "no 'event' name"),
        (event("MEDIA_MARK_PROCESSED"), "MEDIA_MARK_PROCESSED: 'correlation_id' must be str"),
        (event("MEDIA_MARK_PROCESSED", correlation_id=7), "'correlation_id' must be str, got 7"),
        (event("DTMF_END", digit="x"), "DTMF_END: 'x' is not a key"),
        (event("DTMF_END", digit="12"), "DTMF_END: '12' is not a key"),
        (event("DTMF_END", digit=None), "DTMF_END: 'digit' must be str, got None"),
        (event("MEDIA_START", format="ulaw", optimal_frame_size="160", ptime=20),
         "MEDIA_START: 'optimal_frame_size' must be int, got '160'"),
        (event("MEDIA_START", format="ulaw", optimal_frame_size=True, ptime=20),
         "'optimal_frame_size' must be int, got True"),
        (event("STATUS", queue_length=1, queue_full="no"), "STATUS: 'queue_full' must be bool"),
        (event("ERROR"), "ERROR: 'error_text' must be str"),
        ("\x00\xff garbage", "not JSON"),
    ],
)  # fmt: skip
def test_a_malformed_message_is_a_value_error_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse_event(text)


def test_commands_are_one_compact_json_object() -> None:
    assert json.loads(FLUSH_MEDIA) == {"command": "FLUSH_MEDIA"}
    assert mark_media("12") == '{"command":"MARK_MEDIA","correlation_id":"12"}'


def test_a_command_asterisk_would_ignore_for_its_length_is_refused_here() -> None:
    assert len(mark_media("9" * 20)) < MAX_COMMAND_BYTES  # our marks have room to spare
    with pytest.raises(ValueError, match="Asterisk ignores over 128"):
        command("MARK_MEDIA", correlation_id="x" * 100)
