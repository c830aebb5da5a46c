"""Typed ARI events and models (sans-IO): JSON dicts in, frozen dataclasses out.

Only the fields ari-offload acts on are typed; everything else stays in ``raw``. Parse errors
are ``ValueError`` with the offending field named; the event stream logs and drops them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Channel:
    id: str
    name: str
    state: str
    caller_number: str = ""
    caller_name: str = ""
    dialplan_context: str = ""
    dialplan_exten: str = ""
    app_name: str = ""
    app_data: str = ""
    channelvars: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> Channel:
        if not isinstance(data, dict):
            raise ValueError("channel: expected an object")
        caller = _obj(data, "caller", "channel")
        dialplan = _obj(data, "dialplan", "channel")
        return cls(
            id=_str(data, "id", "channel"),
            name=_str(data, "name", "channel"),
            state=str(data.get("state", "")),
            caller_number=str(caller.get("number", "")),
            caller_name=str(caller.get("name", "")),
            dialplan_context=str(dialplan.get("context", "")),
            dialplan_exten=str(dialplan.get("exten", "")),
            app_name=str(dialplan.get("app_name", "")),
            app_data=str(dialplan.get("app_data", "")),
            channelvars={str(k): str(v) for k, v in _obj(data, "channelvars", "channel").items()},
        )


@dataclass(frozen=True)
class Bridge:
    id: str
    name: str
    channels: tuple[str, ...]

    @classmethod
    def from_json(cls, data: Any) -> Bridge:
        if not isinstance(data, dict):
            raise ValueError("bridge: expected an object")
        return cls(
            id=_str(data, "id", "bridge"),
            name=str(data.get("name", "")),
            channels=tuple(str(c) for c in _list(data, "channels", "bridge")),
        )


@dataclass(frozen=True)
class AriEvent:
    type: str
    application: str
    raw: dict[str, Any]


@dataclass(frozen=True)
class ChannelEvent(AriEvent):
    channel: Channel


@dataclass(frozen=True)
class StasisStart(ChannelEvent):
    args: tuple[str, ...]


@dataclass(frozen=True)
class StasisEnd(ChannelEvent):
    pass


@dataclass(frozen=True)
class ChannelDestroyed(ChannelEvent):
    cause: int
    cause_txt: str


@dataclass(frozen=True)
class ChannelHangupRequest(ChannelEvent):
    pass


@dataclass(frozen=True)
class ChannelStateChange(ChannelEvent):
    pass


# The keys a caller can press (ARI reports each as one "digit").
DTMF_KEYS = frozenset("0123456789*#ABCD")


@dataclass(frozen=True)
class ChannelDtmfReceived(ChannelEvent):
    digit: str
    duration_ms: int


def parse_event(data: Any) -> AriEvent:
    """Turn one decoded websocket message into a typed event (unknown types stay generic)."""
    if not isinstance(data, dict):
        raise ValueError("event: expected a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ValueError("event: missing 'type'")
    app = str(data.get("application", ""))
    if kind not in _CHANNEL_EVENTS:
        return AriEvent(kind, app, data)
    channel = Channel.from_json(data.get("channel"))
    if kind == "StasisStart":
        args = _list(data, "args", kind)
        return StasisStart(kind, app, data, channel, tuple(str(a) for a in args))
    if kind == "ChannelDestroyed":
        cause = _int(data, "cause", kind)
        return ChannelDestroyed(kind, app, data, channel, cause, str(data.get("cause_txt", "")))
    if kind == "ChannelDtmfReceived":
        duration_ms = _int(data, "duration_ms", kind)
        return ChannelDtmfReceived(
            kind, app, data, channel, str(data.get("digit", "")), duration_ms
        )
    return _CHANNEL_EVENTS[kind](kind, app, data, channel)


def parse_stasis_args(args: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``Stasis(app,flow=support,lang=en)`` -> {"flow": "support", "lang": "en"}.

    A bare first argument without ``=`` is taken as the flow, so ``Stasis(app,support)`` works.
    """
    parsed: dict[str, str] = {}
    for i, arg in enumerate(args):
        key, sep, value = arg.partition("=")
        if sep:
            parsed[key.strip()] = value.strip()
        elif i == 0 and arg.strip():
            parsed["flow"] = arg.strip()
    return parsed


def stasis_args_from_app_data(app_data: str, app: str) -> tuple[str, ...] | None:
    """Channel ``dialplan.app_data`` ("ari-offload,flow=echo") -> args, or None if not ours."""
    parts = app_data.split(",")
    if parts[0].strip() != app:
        return None
    return tuple(p for p in parts[1:] if p)


def _str(data: dict[str, Any], key: str, what: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what}: missing '{key}'")
    return value


# The helpers below turn a wrong JSON type into a ValueError: the event stream drops only
# ValueError, so an AttributeError or TypeError from one bad event would end the stream.


def _obj(data: dict[str, Any], key: str, what: str) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{what}: '{key}' must be an object")
    return value


def _list(data: dict[str, Any], key: str, what: str) -> list[Any]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{what}: '{key}' must be a list")
    return value


def _int(data: dict[str, Any], key: str, what: str) -> int:
    value = data.get(key, 0)
    # bool is an int subclass (True is no cause code); a numeric string is accepted.
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{what}: '{key}' must be an integer, not {value!r}")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{what}: '{key}' must be an integer, not {value!r}") from None


_CHANNEL_EVENTS: dict[str, type[ChannelEvent]] = {
    "StasisStart": StasisStart,
    "StasisEnd": StasisEnd,
    "ChannelDestroyed": ChannelDestroyed,
    "ChannelHangupRequest": ChannelHangupRequest,
    "ChannelStateChange": ChannelStateChange,
    "ChannelDtmfReceived": ChannelDtmfReceived,
}
