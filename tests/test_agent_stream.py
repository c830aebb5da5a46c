"""Streamed webhook replies against real aiohttp servers on 127.0.0.1 that stream slowly."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from ari_offload.agent.answer import StreamedAnswer
from ari_offload.agent.client import WebhookClient
from ari_offload.agent.contract import WebhookReply
from ari_offload.agent.lines import WebhookLine
from ari_offload.errors import WebhookBadReply, WebhookTimeout
from tests.test_agent_client import FALLBACK, REQUEST, Serve, serve  # noqa: F401 (fixture)

PIECES = ["You said: ", "I forgot ", "my password. ", "How else can I help?"]
GAP_S = 0.15
CANCELLED = web.AppKey("cancelled", asyncio.Event)


async def _ndjson(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await resp.prepare(request)
    try:
        for piece in PIECES:
            await resp.write(json.dumps({"text": piece}).encode() + b"\n")
            await asyncio.sleep(GAP_S)
        await resp.write(b'{"done": true, "hangup": true}\n')
    except (ConnectionResetError, asyncio.CancelledError):  # the client went away
        request.app[CANCELLED].set()
        raise
    return resp


async def _sse_openai(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    for piece in PIECES:
        chunk = {"choices": [{"delta": {"content": piece}, "finish_reason": None}]}
        await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await asyncio.sleep(GAP_S)
    await resp.write(b"data: [DONE]\n\n")
    return resp


async def _silent_stream(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await resp.prepare(request)
    await asyncio.sleep(5)  # headers sent, no text: the first-text timeout must fire
    return resp


async def _stalls_midway(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await resp.prepare(request)
    await resp.write(b'{"text": "Let me check. "}\n')
    await asyncio.sleep(5)
    return resp


async def _breaks_midway(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await resp.prepare(request)
    await resp.write(b'{"text": "One moment. "}\nthis is not json\n')
    await asyncio.sleep(5)  # then idles: the bad line must be reported now, not at a timeout
    return resp


async def _only_a_space(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await resp.prepare(request)
    await resp.write(b'{"text": " "}\n')  # whitespace: no answer, no extra time
    await asyncio.sleep(5)
    return resp


def streaming_app() -> web.Application:
    app = web.Application()
    app[CANCELLED] = asyncio.Event()
    for path, handler in [
        ("/ndjson", _ndjson),
        ("/sse", _sse_openai),
        ("/silent", _silent_stream),
        ("/stalls", _stalls_midway),
        ("/breaks", _breaks_midway),
        ("/space", _only_a_space),
    ]:
        app.router.add_post(path, handler)
    return app


@pytest.fixture
async def streaming(serve: Serve) -> tuple[str, web.Application]:  # noqa: F811
    app = streaming_app()
    return await serve(app), app


@pytest.fixture
async def client() -> AsyncIterator[WebhookClient]:
    async with aiohttp.ClientSession() as session:
        yield WebhookClient(session, 0.5, stream_timeout_s=1.5)


@pytest.mark.parametrize("path", ["/ndjson", "/sse"])
async def test_pieces_arrive_while_the_agent_is_still_writing(
    client: WebhookClient, streaming: tuple[str, web.Application], path: str
) -> None:
    base, _ = streaming
    start = time.monotonic()
    arrivals: list[tuple[float, str]] = []
    async for piece in client.stream(f"{base}{path}", REQUEST, None):
        if piece.text:
            arrivals.append((time.monotonic() - start, piece.text))
    assert [text for _, text in arrivals] == PIECES
    # The first piece came before the agent wrote the last one (it takes 3 gaps to get there).
    assert arrivals[0][0] < arrivals[-1][0] - 2 * GAP_S
    assert client.stats.requests == 1
    assert client.stats.succeeded == 1


async def test_ask_collects_a_streamed_reply(
    client: WebhookClient, streaming: tuple[str, web.Application]
) -> None:
    base, _ = streaming
    reply = await client.ask(f"{base}/ndjson", REQUEST, None)
    assert reply == WebhookReply("".join(PIECES), hangup=True)


async def test_first_text_timeout_then_total_timeout(
    client: WebhookClient, streaming: tuple[str, web.Application]
) -> None:
    base, _ = streaming
    with pytest.raises(WebhookTimeout, match=r"did not answer within 0\.5 s"):
        async for _ in client.stream(f"{base}/silent", REQUEST, None):
            pass
    got: list[str] = []

    async def read_all() -> None:
        async for piece in client.stream(f"{base}/stalls", REQUEST, None):
            got.append(piece.text)

    with pytest.raises(WebhookTimeout, match=r"did not finish its streamed reply within 1\.5 s"):
        await read_all()
    assert got == ["Let me check. "]  # what came before the stall was handed on


async def test_closing_the_stream_cancels_the_agents_request(
    client: WebhookClient, streaming: tuple[str, web.Application]
) -> None:
    base, app = streaming
    stream = client.stream(f"{base}/ndjson", REQUEST, None)
    first = await anext(stream)
    assert first.text == PIECES[0]
    await stream.aclose()  # a barge-in: the caller talked over the reply
    async with asyncio.timeout(2):
        await app[CANCELLED].wait()
    assert client.stats.requests == 0  # a cancelled request is no outcome


async def test_answer_keeps_what_came_before_a_break_and_never_raises(
    client: WebhookClient, streaming: tuple[str, web.Application], caplog: pytest.LogCaptureFixture
) -> None:
    base, _ = streaming
    broken = StreamedAnswer(WebhookLine(client, f"{base}/breaks", None), REQUEST, FALLBACK)
    started = time.monotonic()
    said = [piece async for piece in broken.pieces()]
    assert time.monotonic() - started < 1.0  # the bad line ended it, not the 1.5 s timeout
    assert said == ["One moment. "]  # no fallback line glued onto a reply already begun
    assert isinstance(broken.error, WebhookBadReply)
    assert broken.failure == "bad_reply"
    assert "the rest is not said" in caplog.text

    silent = StreamedAnswer(WebhookLine(client, f"{base}/silent", None), REQUEST, FALLBACK)
    assert [piece async for piece in silent.pieces()] == [FALLBACK]
    assert isinstance(silent.error, WebhookTimeout)
    assert not silent.hangup


async def test_answer_reports_hangup_and_first_text_time(
    client: WebhookClient, streaming: tuple[str, web.Application]
) -> None:
    base, _ = streaming
    answer = StreamedAnswer(WebhookLine(client, f"{base}/ndjson", None), REQUEST, FALLBACK)
    asked = time.monotonic()
    pieces = [piece async for piece in answer.pieces()]
    assert answer.text == "".join(PIECES)
    assert answer.hangup
    assert pieces == PIECES  # handed on piece by piece, as they came
    assert answer.answered_at is not None
    assert answer.answered_at - asked < GAP_S


async def test_whitespace_is_no_answer_and_buys_no_time(
    client: WebhookClient, streaming: tuple[str, web.Application]
) -> None:
    base, _ = streaming
    answer = StreamedAnswer(WebhookLine(client, f"{base}/space", None), REQUEST, FALLBACK)
    said = [piece async for piece in answer.pieces()]
    assert said[-1] == FALLBACK
    assert isinstance(answer.error, WebhookTimeout)
    assert "did not answer within 0.5 s" in str(answer.error)  # the first-text timeout
