"""``GET /v1.0/events``: the tenant's live calls as server-sent events (SSE).

Why SSE rather than a WebSocket: the stream only ever flows from the server to the client
(commands such as hang up and talk stay REST requests), and SSE is plain HTTP. The access key
goes in the usual ``Authorization: Bearer`` header, a refusal is the API's usual JSON error
with its status (401, 422, 429) before the stream starts, the OpenAPI document describes the
route like any other, proxies and ``curl -N`` handle it, and resumption is part of the
standard: every event carries an ``id:``, and a client that reconnects sends the last one in
``Last-Event-ID``. A WebSocket would add a second framing and a second way to authenticate
(browsers cannot set headers on one) for a direction we never use. Browsers' ``EventSource``
cannot set headers either, so the console reads the stream with ``fetch`` (the key stays in
the header, never in a URL); the SDK reads it with aiohttp (``sdk/events.py``).

The stream: a ``retry:`` line, then one frame per event (``id: <id>``, ``event: <type>``,
``data: <the event as JSON>``; observe/event_stream.py has the shape, observe/live_events.py
the types) and a ``: keepalive`` comment line whenever nothing was sent for
``stream_keepalive_s``. A reader that falls behind by more than ``stream_buffer`` events or
``stream_backlog_bytes`` bytes (those its socket holds unacknowledged included) is cut off; it
may reconnect and resume from its last id.
"""

from __future__ import annotations

import asyncio
import fcntl
import struct
import termios
from collections.abc import Callable

from aiohttp import web

from ari_offload.api.errors import ApiError
from ari_offload.api.routing import PREFIX, Ctx, Resp, Route
from ari_offload.errors import ValidationError
from ari_offload.observe.event_stream import EVENT_TYPES, MAX_ID_LENGTH, Subscription
from ari_offload.schema import Param, Str

RETRY_MS = 3000  # how long an EventSource waits before it reconnects
STREAMS_RETRY_AFTER_S = 10
# aiohttp does not tell a handler that its client left: the stream looks this often.
CLOSED_POLL_S = 1.0
SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-store",
    "X-Accel-Buffering": "no",  # nginx: pass each event on at once
}


async def stream_events(ctx: Ctx) -> web.StreamResponse:
    hub = ctx.services.events
    last_id = ctx.request.headers.get("Last-Event-ID") or ctx.query["last_event_id"]
    if hub.full(ctx.customer_id):
        raise ApiError(
            429, "too_many_streams",
            f"this account already has {hub.max_subscribers} event streams open; close one",
            headers={"Retry-After": str(STREAMS_RETRY_AFTER_S)},
        )  # fmt: skip
    try:
        subscription = hub.subscribe(ctx.customer_id, last_id)
    except ValidationError as exc:
        raise ApiError.invalid(exc) from None
    try:
        return await _serve(ctx, subscription)
    finally:
        subscription.close()


async def _serve(ctx: Ctx, subscription: Subscription) -> web.StreamResponse:
    request, settings = ctx.request, ctx.services.settings
    response = web.StreamResponse(headers=SSE_HEADERS)
    try:
        await response.prepare(request)
        transport = request.transport
        if transport is None:
            return response  # the reader left already
        subscription.unacknowledged = _unacknowledged(transport)
        subscription.on_drop = transport.abort  # dropped: the connection ends at once
        await _send(request, response, f"retry: {RETRY_MS}\n\n".encode())
        quiet_s = 0.0
        while not transport.is_closing():  # the reader left: its place frees within a second
            try:
                async with asyncio.timeout(min(CLOSED_POLL_S, settings.stream_keepalive_s)):
                    event = await subscription.next()
            except TimeoutError:
                quiet_s += min(CLOSED_POLL_S, settings.stream_keepalive_s)
                if quiet_s >= settings.stream_keepalive_s:
                    await _send(request, response, b": keepalive\n\n")
                    quiet_s = 0.0
                continue
            if event is None:
                break  # dropped, or the server stops
            await _send(request, response, event.wire)
            quiet_s = 0.0
    except ConnectionError:
        pass  # the reader left, or was dropped
    return response


def _unacknowledged(transport: asyncio.Transport) -> Callable[[], int]:
    """Bytes written to the reader and not acknowledged by its end: the transport's buffer,
    and the socket's send queue (Linux's SIOCOUTQ: sent but not acknowledged, or unsent)."""
    sock = transport.get_extra_info("socket")

    def behind() -> int:
        queued = transport.get_write_buffer_size()
        fd = sock.fileno() if sock is not None else -1
        if fd < 0:
            return queued
        try:
            raw = fcntl.ioctl(fd, termios.TIOCOUTQ, b"\0\0\0\0")
        except OSError:  # not a TCP socket here (or not Linux): the transport's share only
            return queued
        return queued + int(struct.unpack("i", raw)[0])

    return behind


async def _send(request: web.Request, response: web.StreamResponse, data: bytes) -> None:
    await response.write(data)
    await request.writer.drain()  # wait while the socket is full: the queue fills instead


ROUTES = [
    Route(
        "GET",
        f"{PREFIX}/events",
        stream_events,
        "streamEvents",
        "Stream your calls' events as they happen (server-sent events)",
        "events",
        {200: Resp("an endless text/event-stream", content_type="text/event-stream")},
        query=(
            Param(
                "last_event_id",
                Str(MAX_ID_LENGTH, 1, r"^[0-9a-f]+-[0-9]+$"),
                "resume after this event id (the Last-Event-ID header wins)",
            ),
        ),
        errors=(429,),
        description="Event types: " + ", ".join(EVENT_TYPES) + ". Each frame carries `id:`, "
        "`event:` (the type) and `data:` (JSON: id, type, call_id, at, data). Reconnect with "
        "the last id in `Last-Event-ID` to get what was missed (the server keeps a few "
        "minutes); a `stream.reset` event first means more was missed than it kept: reload "
        "calls with GET /v1.0/calls. A reader that falls far behind is disconnected.",
    ),
]
