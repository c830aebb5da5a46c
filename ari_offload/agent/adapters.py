"""The webhook helper (agent.server) as an aiohttp handler and a Flask view.

Each adapter takes ``callback(request: WebhookRequest)`` and answers for it: a refused
request (bad signature, stale timestamp, malformed body) gets its 401 or 400 JSON without
the callback being called. The callback answers with

- text (``str``), a ``WebhookReply``, or ``server.reply(...)``'s bytes: one JSON reply;
- an iterator of text chunks (a generator; async for aiohttp), or ``server.stream_ndjson``:
  an NDJSON stream, each chunk sent as it comes;
- its framework's own response object, sent as is.

Each adapter imports its framework when it is made, so Flask users need no aiohttp loaded
and the other way round.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from ari_offload.agent.contract import DEFAULT_SIGNATURE_TOLERANCE_S, WebhookReply, WebhookRequest
from ari_offload.agent.server import (
    JSON_CONTENT_TYPE,
    Chunk,
    NdjsonStream,
    Refusal,
    as_stream,
    check_secret,
    handle,
    reply_body,
)

if TYPE_CHECKING:
    import flask
    from aiohttp import web

    Answer = str | bytes | WebhookReply | NdjsonStream | Iterable[Chunk]
    AiohttpAnswer = Answer | AsyncIterable[Chunk] | web.StreamResponse
    AiohttpCallback = Callable[[WebhookRequest], Awaitable[AiohttpAnswer] | AiohttpAnswer]
    FlaskCallback = Callable[[WebhookRequest], Answer | flask.Response]

logger = logging.getLogger("ari_offload.agent")


def aiohttp_handler(
    callback: AiohttpCallback,
    *,
    secret: str | None,
    clock: Callable[[], float] = time.time,
    tolerance_s: float = DEFAULT_SIGNATURE_TOLERANCE_S,
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An aiohttp handler (``app.router.add_post(path, ...)``) answering with ``callback``,
    which may be a plain or ``async`` function, or an async generator of chunks.

    ``secret`` is the agent's secret in ari-offload; None accepts unsigned requests.
    """
    from aiohttp import web

    check_secret(secret)

    async def webhook(request: web.Request) -> web.StreamResponse:
        got = handle(
            await request.read(), request.headers, secret, now=clock(), tolerance_s=tolerance_s
        )
        if isinstance(got, Refusal):
            _log_refusal(got)
            return web.Response(body=got.body(), status=got.status, content_type=got.content_type)
        answer = callback(got)
        if inspect.isawaitable(answer):
            answer = await answer
        if isinstance(answer, web.StreamResponse):
            return answer
        stream = as_stream(answer)
        if stream is not None:
            return await _aiohttp_stream(request, stream)
        return web.Response(body=reply_body(answer), content_type=JSON_CONTENT_TYPE)

    return webhook


async def _aiohttp_stream(request: web.Request, stream: NdjsonStream) -> web.StreamResponse:
    from aiohttp import web

    resp = web.StreamResponse()
    resp.content_type = stream.content_type
    await resp.prepare(request)
    lines = stream.alines()
    try:
        async for line in lines:
            await resp.write(line)  # sent now: chunked, one line per chunk
        await resp.write_eof()
    except ConnectionResetError:
        # ari-offload closed the request: the caller talked over the reply (a barge-in).
        logger.debug("streamed reply closed by ari-offload after a barge-in")
    finally:
        await lines.aclose()  # and so the callback's generator: stop generating
    return resp


def flask_view(
    callback: FlaskCallback,
    *,
    secret: str | None,
    clock: Callable[[], float] = time.time,
    tolerance_s: float = DEFAULT_SIGNATURE_TOLERANCE_S,
) -> Callable[[], flask.Response]:
    """A Flask view (``app.post(path)(...)``, or ``add_url_rule``) answering with
    ``callback``, a plain function; a streamed answer is a plain generator of chunks.

    The view is named after ``callback`` (Flask's endpoint name).
    """
    import flask

    check_secret(secret)

    def view() -> flask.Response:
        request = flask.request
        got = handle(
            request.get_data(),
            dict(request.headers.items()),
            secret,
            now=clock(),
            tolerance_s=tolerance_s,
        )
        if isinstance(got, Refusal):
            _log_refusal(got)
            return flask.Response(got.body(), status=got.status, mimetype=got.content_type)
        answer: Any = callback(got)
        if inspect.isawaitable(answer) or isinstance(answer, AsyncIterable):
            _close_unawaited(answer)
            raise TypeError(
                "flask_view takes a plain function and plain generators; "
                "use aiohttp_handler for async callbacks"
            )
        if isinstance(answer, flask.Response):
            return answer
        stream = as_stream(answer)
        if stream is not None:
            # Werkzeug sends a generator as it yields, and closes it if the client goes.
            return flask.Response(stream.lines(), mimetype=stream.content_type)
        return flask.Response(reply_body(answer), mimetype=JSON_CONTENT_TYPE)

    view.__name__ = getattr(callback, "__name__", "ari_offload_webhook")
    return view


def _log_refusal(refusal: Refusal) -> None:
    # INFO, not WARNING: a scanner or a misconfigured secret, not a fault of this server.
    logger.info(
        "webhook request refused: HTTP %d %s: %s", refusal.status, refusal.code, refusal.message
    )


def _close_unawaited(answer: object) -> None:
    close = getattr(answer, "close", None)  # a coroutine: no "never awaited" warning
    if close is not None and inspect.iscoroutine(answer):
        close()
