"""ARI events: the captured test-bed call parses into typed events; garbage raises ValueError."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from ari_offload.ari.events import (
    AriEvent,
    Bridge,
    Channel,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelHangupRequest,
    ChannelStateChange,
    StasisEnd,
    StasisStart,
    parse_event,
    parse_stasis_args,
    stasis_args_from_app_data,
)
from ari_offload.ari.stream import _dispatch

FIXTURE = Path(__file__).parents[1] / "fixtures" / "ari" / "inbound_call_caller_hangup.jsonl"
CALLER_ID = "1795476849.0"


def load_fixture() -> list[dict[str, Any]]:
    with FIXTURE.open() as f:
        return [json.loads(line) for line in f if line.strip()]


def first(kind: str) -> dict[str, Any]:
    """A deep copy of the first captured event of a type, safe to damage."""
    return copy.deepcopy(next(e for e in load_fixture() if e["type"] == kind))


# --- the captured call ------------------------------------------------------------------------


def test_every_captured_event_parses_to_its_class() -> None:
    events = [parse_event(data) for data in load_fixture()]

    assert [type(e).__name__ for e in events] == [
        "StasisStart",
        "ChannelStateChange",
        *["AriEvent"] * 5,  # ChannelVarset: RTPAUDIOQOS*
        "ChannelHangupRequest",
        "StasisEnd",
        "AriEvent",  # ChannelVarset: STASISSTATUS
        "ChannelHangupRequest",
        "ChannelDestroyed",
    ]
    assert {e.application for e in events} == {"ari-offload"}


def test_every_captured_event_keeps_its_raw_json() -> None:
    for data in load_fixture():
        event = parse_event(data)

        assert event.raw == data
        assert event.type == data["type"]


def test_captured_channel_events_name_the_caller() -> None:
    events = [parse_event(data) for data in load_fixture()]
    typed = (StasisStart, StasisEnd, ChannelStateChange, ChannelHangupRequest, ChannelDestroyed)

    for event in events:
        if isinstance(event, typed):
            assert event.channel.id == CALLER_ID
            assert event.channel.name == "PJSIP/test-caller-00000000"


def test_stasis_start_carries_channel_and_args() -> None:
    event = parse_event(first("StasisStart"))

    assert isinstance(event, StasisStart)
    assert event.args == ("flow=echo",)
    assert event.channel == Channel(
        id=CALLER_ID,
        name="PJSIP/test-caller-00000000",
        state="Ring",
        caller_number="sipp",
        caller_name="sipp",
        dialplan_context="from-test",
        dialplan_exten="7000",
        app_name="Stasis",
        app_data="ari-offload,flow=echo",
    )
    assert parse_stasis_args(event.args) == {"flow": "echo"}


def test_state_change_reports_the_new_state() -> None:
    event = parse_event(first("ChannelStateChange"))

    assert isinstance(event, ChannelStateChange)
    assert event.channel.state == "Up"


def test_channel_destroyed_carries_the_cause() -> None:
    event = parse_event(first("ChannelDestroyed"))

    assert isinstance(event, ChannelDestroyed)
    assert (event.cause, event.cause_txt) == (0, "Unknown")


def test_unknown_event_types_stay_generic() -> None:
    data = first("ChannelVarset")
    event = parse_event(data)

    assert type(event) is AriEvent
    assert event.raw["variable"] == "RTPAUDIOQOS"


def test_dtmf_event_is_typed() -> None:
    data = first("ChannelStateChange")
    data.update(type="ChannelDtmfReceived", digit="5", duration_ms=120)
    event = parse_event(data)

    assert isinstance(event, ChannelDtmfReceived)
    assert (event.digit, event.duration_ms) == ("5", 120)


def test_optional_channel_fields_default_to_empty() -> None:
    channel = Channel.from_json({"id": "c1", "name": "UnicastRTP/127.0.0.1:4000-0x1"})

    assert channel.state == ""
    assert channel.app_data == ""
    assert channel.channelvars == {}


def test_channelvars_are_read_as_strings() -> None:
    channel = Channel.from_json(
        {"id": "m", "name": "UnicastRTP/x", "channelvars": {"UNICASTRTP_LOCAL_PORT": 10000}}
    )

    assert channel.channelvars == {"UNICASTRTP_LOCAL_PORT": "10000"}


def test_bridge_from_json() -> None:
    bridge = Bridge.from_json({"id": "aoff-bridge-1", "name": "n", "channels": ["a", "b"]})

    assert bridge == Bridge("aoff-bridge-1", "n", ("a", "b"))


# --- malformed events ---------------------------------------------------------------------------


def _without(data: dict[str, Any], *path: str) -> dict[str, Any]:
    target = data
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return data


def _with(data: dict[str, Any], value: Any, *path: str) -> dict[str, Any]:
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "event: expected a JSON object"),
        ("StasisStart", "event: expected a JSON object"),
        ({"application": "ari-offload"}, "event: missing 'type'"),
        ({"type": 7}, "event: missing 'type'"),
        (_without(first("StasisStart"), "channel"), "channel: expected an object"),
        (_with(first("StasisEnd"), "1795476849.0", "channel"), "channel: expected an object"),
        (_without(first("StasisStart"), "channel", "id"), "channel: missing 'id'"),
        (_with(first("StasisEnd"), "", "channel", "id"), "channel: missing 'id'"),
        (_with(first("StasisEnd"), 17, "channel", "id"), "channel: missing 'id'"),
        (_without(first("StasisStart"), "channel", "name"), "channel: missing 'name'"),
        (_with(first("StasisStart"), "flow=echo", "args"), "StasisStart: 'args' must be a list"),
        (_with(first("StasisEnd"), "Alice", "channel", "caller"), "channel: 'caller'"),
        (_with(first("StasisEnd"), ["x"], "channel", "dialplan"), "channel: 'dialplan'"),
        (_with(first("StasisEnd"), "A=1", "channel", "channelvars"), "channel: 'channelvars'"),
        (_with(first("ChannelDestroyed"), "busy", "cause"), "ChannelDestroyed: 'cause'"),
        (_with(first("ChannelDestroyed"), None, "cause"), "ChannelDestroyed: 'cause'"),
    ],
)
def test_malformed_events_raise_value_error_naming_the_field(data: Any, message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        parse_event(data)


def test_malformed_dtmf_duration_names_the_field() -> None:
    data = first("ChannelStateChange")
    data.update(type="ChannelDtmfReceived", digit="5", duration_ms="long")

    with pytest.raises(ValueError, match="ChannelDtmfReceived: 'duration_ms'"):
        parse_event(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, "bridge: expected an object"),
        ({"name": "n"}, "bridge: missing 'id'"),
        ({"id": "b", "channels": "abc"}, "bridge: 'channels' must be a list"),
    ],
)
def test_malformed_bridges_raise_value_error(data: Any, message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        Bridge.from_json(data)


# --- Stasis arguments -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), {}),
        (("flow=support",), {"flow": "support"}),
        (("support",), {"flow": "support"}),
        ((" support ",), {"flow": "support"}),
        (("support", "lang=en"), {"flow": "support", "lang": "en"}),
        (("flow=support", "lang=en", "greeting=hi=there"), {
            "flow": "support", "lang": "en", "greeting": "hi=there",
        }),
        ((" flow = echo ",), {"flow": "echo"}),
        (("lang=en", "support"), {"lang": "en"}),  # only the FIRST bare arg is the flow
        (("",), {}),
        (["flow=x"], {"flow": "x"}),  # lists work as well as tuples
    ],
)  # fmt: skip
def test_parse_stasis_args(args: tuple[str, ...], expected: dict[str, str]) -> None:
    assert parse_stasis_args(args) == expected


@pytest.mark.parametrize(
    ("app_data", "expected"),
    [
        ("ari-offload,flow=echo", ("flow=echo",)),
        ("ari-offload", ()),
        ("ari-offload,support,lang=en", ("support", "lang=en")),
        ("other-app,flow=echo", None),
        ("", None),
        ("ari-offload-2,flow=echo", None),
    ],
)
def test_stasis_args_from_app_data(app_data: str, expected: tuple[str, ...] | None) -> None:
    assert stasis_args_from_app_data(app_data, "ari-offload") == expected


def test_adopted_args_mean_what_stasis_start_args_mean() -> None:
    # The restarted controller reads args from app_data; they must select the same flow.
    event = parse_event(first("StasisStart"))
    assert isinstance(event, StasisStart)

    adopted = stasis_args_from_app_data(event.channel.app_data, "ari-offload")

    assert adopted is not None
    assert parse_stasis_args(adopted) == parse_stasis_args(event.args)


# --- the event stream's dispatch (no socket: the text of one websocket message) ----------------


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        json.dumps({"no": "type"}),
        json.dumps(_with(first("StasisEnd"), "Alice", "channel", "caller")),
        json.dumps(_with(first("ChannelDestroyed"), None, "cause")),
    ],
)
def test_stream_drops_a_malformed_event_and_keeps_going(text: str) -> None:
    seen: list[AriEvent] = []

    _dispatch(text, seen.append)  # must not raise: a raise here would end the event stream
    _dispatch(json.dumps(first("StasisEnd")), seen.append)

    assert [type(e) for e in seen] == [StasisEnd]


def test_stream_survives_a_failing_handler() -> None:
    def handler(event: AriEvent) -> None:
        raise RuntimeError("bug in a handler")

    _dispatch(json.dumps(first("StasisEnd")), handler)  # logged, not raised
