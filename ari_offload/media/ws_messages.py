"""chan_websocket's control messages, sans-IO: the events Asterisk sends on a media websocket
parsed into types, and the commands we send, built.

We ask for the JSON format (externalMedia ``transport_data=f(json)``), so both directions are
one JSON object per TEXT message: commands ``{"command": "MARK_MEDIA", "correlation_id":
"7"}``, events ``{"event": "MEDIA_MARK_PROCESSED", "channel_id": "...", "correlation_id":
"7"}``. Asterisk 22.10.1 (channels/chan_websocket.c) sends MEDIA_START once connected,
MEDIA_MARK_PROCESSED when playout reaches a mark, DTMF_END for each key it passes to the
channel, MEDIA_XOFF at 900 queued frames and MEDIA_XON below 800 (it holds at most 1000 and
ignores media beyond), QUEUE_DRAINED, STATUS and ERROR. A command longer than
``MAX_COMMAND_BYTES`` is ignored there.

``parse_event`` raises ``ValueError`` with an exact message for a message that is not a
well-formed event; an event it does not know comes back as ``UnknownEvent`` (the shell
counts both, and the call goes on).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_COMMAND_BYTES = 128  # chan_websocket's MAX_TEXT_MESSAGE_LEN
DTMF_DIGITS = frozenset("0123456789*#ABCD")


@dataclass(frozen=True)
class MediaStart:
    """The connection is up: the channel's format and the frame size it plays best."""

    format: str
    optimal_frame_size: int
    ptime: int


@dataclass(frozen=True)
class MarkProcessed:
    """Playout reached the mark sent with ``correlation_id``."""

    correlation_id: str


@dataclass(frozen=True)
class DtmfEnd:
    digit: str


@dataclass(frozen=True)
class MediaXoff:
    """Asterisk's queue is nearly full: send no more media until ``MediaXon``."""


@dataclass(frozen=True)
class MediaXon:
    pass


@dataclass(frozen=True)
class QueueDrained:
    pass


@dataclass(frozen=True)
class Status:
    queue_length: int
    queue_full: bool


@dataclass(frozen=True)
class AsteriskError:
    """Asterisk refused a command of ours (e.g. one it could not parse)."""

    text: str


@dataclass(frozen=True)
class UnknownEvent:
    """A well-formed event this version does not know (a later Asterisk may send more)."""

    name: str


Event = (
    MediaStart
    | MarkProcessed
    | DtmfEnd
    | MediaXoff
    | MediaXon
    | QueueDrained
    | Status
    | AsteriskError
    | UnknownEvent
)

_NO_DATA: dict[str, Event] = {
    "MEDIA_XOFF": MediaXoff(),
    "MEDIA_XON": MediaXon(),
    "QUEUE_DRAINED": QueueDrained(),
}


def parse_event(text: str) -> Event:
    """One TEXT message from Asterisk; ``ValueError`` if it is not a well-formed event."""
    try:
        data = json.loads(text)
    except ValueError:
        raise ValueError(f"not JSON: {text[:60]!r}") from None
    if not isinstance(data, dict):
        raise ValueError(f"not a JSON object: {text[:60]!r}")
    name = data.get("event")
    if not isinstance(name, str):
        raise ValueError(f"no 'event' name: {text[:60]!r}")
    if name in _NO_DATA:
        return _NO_DATA[name]
    if name == "MEDIA_START":
        return MediaStart(
            _field(data, name, "format", str),
            _field(data, name, "optimal_frame_size", int),
            _field(data, name, "ptime", int),
        )
    if name == "MEDIA_MARK_PROCESSED":
        return MarkProcessed(_field(data, name, "correlation_id", str))
    if name == "DTMF_END":
        digit = _field(data, name, "digit", str)
        if digit not in DTMF_DIGITS:
            raise ValueError(f"DTMF_END: {digit!r} is not a key")
        return DtmfEnd(digit)
    if name == "STATUS":
        return Status(
            _field(data, name, "queue_length", int), _field(data, name, "queue_full", bool)
        )
    if name == "ERROR":
        return AsteriskError(_field(data, name, "error_text", str))
    return UnknownEvent(name)


def _field(data: dict[str, Any], event: str, key: str, kind: type[Any]) -> Any:
    value = data.get(key)
    # bool is an int in Python: a count must not be true or false
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{event}: {key!r} must be {kind.__name__}, got {value!r}")
    return value


def command(name: str, **fields: str) -> str:
    """One command as Asterisk reads it, e.g. ``command("FLUSH_MEDIA")``."""
    text = json.dumps({"command": name, **fields}, separators=(",", ":"))
    if len(text.encode()) > MAX_COMMAND_BYTES:
        raise ValueError(f"{name}: {len(text)} bytes, Asterisk ignores over {MAX_COMMAND_BYTES}")
    return text


FLUSH_MEDIA = command("FLUSH_MEDIA")


def mark_media(correlation_id: str) -> str:
    return command("MARK_MEDIA", correlation_id=correlation_id)
