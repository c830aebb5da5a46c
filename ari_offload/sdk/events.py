"""The live event stream in the SDK: ``async for event in client.events()``.

    async with Client("http://127.0.0.1:8080", key) as client:
        async for event in client.events():
            if event.type == "transcript.added":
                print(event.call_id, event.data["role"], event.data["text"])

Events are the tenant's calls as they happen (``GET /v1.0/events``, server-sent events):
``call.started``, ``transcript.added``, ``transcript.corrected`` (``heard``: what the caller
heard of an interrupted reply), ``turn.updated``, ``turn.finished``, ``call.ended``,
``call.failed``; the README's "Watching calls live" section has their fields.

A dropped connection is reopened by itself (1 s, then doubling up to 30 s between tries),
resuming after the last event yielded: nothing the server still holds is lost. A
``stream.reset`` event means more was missed than it held (it restarted, or the gap was too
long): reload what you show with ``client.calls.list()``. ``last_event_id`` resumes from an
earlier run's last ``event.id``. To stop early, leave the loop inside
``contextlib.aclosing(client.events())``: the connection then closes at once. A refused key
(401) or id (422) raises at once; anything else (the server away, 429 too many streams, 5xx)
is retried unless ``reconnect=False``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

FIRST_RETRY_S = 1.0
MAX_RETRY_S = 30.0
# The server sends a comment at least every 15 s: a silent minute is a dead connection.
READ_TIMEOUT_S = 60.0
FATAL_STATUSES = frozenset({400, 401, 403, 404, 422})

# (HTTP status, decoded body or None) -> the SDK's ApiError (0: not reachable).
ErrorFactory = Callable[[int, Any], Exception]


@dataclass(frozen=True)
class Event:
    id: str | None  # give it back as ``last_event_id`` to resume after this event
    type: str
    call_id: str | None
    at: datetime | None
    data: Mapping[str, Any]

    @classmethod
    def from_json(cls, d: Mapping[str, Any], id_: str | None) -> Event:
        at = d.get("at")
        return cls(
            d.get("id") or id_,
            str(d.get("type")),
            d.get("call_id"),
            datetime.fromisoformat(at) if isinstance(at, str) else None,
            d.get("data") or {},
        )


class SseDecoder:
    """Server-sent event frames from lines, sans-IO: ``line`` returns a frame's (id, type,
    data) at its blank line, None before. The last id seen carries over, as the standard says."""

    def __init__(self) -> None:
        self.last_id: str | None = None
        self._type = ""
        self._data: list[str] = []

    def line(self, text: str) -> tuple[str | None, str, str] | None:
        text = text.rstrip("\r\n")
        if not text:
            if not self._data:
                self._type = ""
                return None
            frame = (self.last_id, self._type or "message", "\n".join(self._data))
            self._type, self._data = "", []
            return frame
        if text.startswith(":"):
            return None  # a comment: the server's keepalive
        name, _, value = text.partition(":")
        value = value.removeprefix(" ")
        if name == "id" and "\0" not in value:
            self.last_id = value
        elif name == "event":
            self._type = value
        elif name == "data":
            self._data.append(value)
        return None


async def stream_events(
    base_url: str,
    accesskey: str,
    error: ErrorFactory,
    last_event_id: str | None = None,
    *,
    reconnect: bool = True,
    read_timeout_s: float = READ_TIMEOUT_S,
) -> AsyncGenerator[Event, None]:
    """The events, for ever (see the module docstring); ``Client.events`` calls this."""
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10.0, sock_read=read_timeout_s)
    retry_s = FIRST_RETRY_S
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while True:
            headers = {"Authorization": f"Bearer {accesskey}", "Accept": "text/event-stream"}
            if last_event_id:
                headers["Last-Event-ID"] = last_event_id
            wait_s: float | None = None
            try:
                async with session.get(f"{base_url}/v1.0/events", headers=headers) as resp:
                    if resp.status != 200:
                        body = await _json(resp)
                        if resp.status in FATAL_STATUSES or not reconnect:
                            raise error(resp.status, body)
                        wait_s = _retry_after(resp)
                    else:
                        retry_s = FIRST_RETRY_S  # connected: the next drop starts over
                        decoder = SseDecoder()
                        async for raw in resp.content:
                            frame = decoder.line(raw.decode("utf-8", errors="replace"))
                            if frame is None:
                                continue
                            event = Event.from_json(json.loads(frame[2]), frame[0])
                            last_event_id = event.id or last_event_id
                            yield event
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                # ValueError: a frame that is not JSON, or a line past aiohttp's bound.
                if not reconnect:
                    message = f"the event stream failed: {exc!r}"
                    raise error(0, {"error": {"code": "unreachable", "message": message}}) from exc
            else:
                if not reconnect and wait_s is None:
                    return  # the server ended the stream (it stops)
            await asyncio.sleep(wait_s if wait_s is not None else retry_s)
            retry_s = min(retry_s * 2, MAX_RETRY_S)


async def _json(resp: aiohttp.ClientResponse) -> Any:
    try:
        return await resp.json(content_type=None)
    except ValueError:
        return None


def _retry_after(resp: aiohttp.ClientResponse) -> float | None:
    value = resp.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None
