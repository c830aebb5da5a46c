"""WebhookClient and the sample agent against real aiohttp servers on 127.0.0.1 that misbehave."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import aiohttp
import pytest
from aiohttp import web

from ari_offload import __version__
from ari_offload.agent.client import AgentAnswer, WebhookClient, WebhookStats
from ari_offload.agent.contract import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookReply,
    WebhookRequest,
    verify,
)
from ari_offload.agent.egress import webhook_session
from ari_offload.agent.http_reply import MAX_REPLY_BYTES, safe_url
from ari_offload.agent.reply_actions import Collect, SendDtmf
from ari_offload.agent.sample import (
    DEFAULT_REPLY,
    GOODBYE_REPLY,
    HOURS_REPLY,
    RECEIVED_KEY,
    RESET_REPLY,
    make_sample_agent_app,
    run_sample_agent,
    sample_reply,
)
from ari_offload.errors import (
    WebhookBadReply,
    WebhookError,
    WebhookStatusError,
    WebhookTimeout,
    WebhookUnreachable,
)
from ari_offload.policy_file import load_policy
from testbed.asterisk import TESTBED_POLICY_FILE

SECRET = "whsec-never-logged"
QUERY_SECRET = "tok-in-query"  # webhook URLs often carry a token; it must never be shown
FALLBACK = "Sorry, could you say that again?"
TIMEOUT_S = 0.3
REQUEST = WebhookRequest("call-1", "agent-1", "I forgot my password", 1, heard=None)

SEEN_KEY = web.AppKey("seen", list[tuple[dict[str, str], bytes]])
Serve = Callable[[web.Application], Awaitable[str]]


async def _ok(request: web.Request) -> web.StreamResponse:
    request.app[SEEN_KEY].append((dict(request.headers), await request.read()))
    return web.json_response({"text": "Hello there"})


async def _slow(request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(5)
    return web.json_response({"text": "too late"})


async def _error(request: web.Request) -> web.StreamResponse:
    return web.Response(status=500, text="Traceback (most recent call last):\n  boom")


async def _garbage(request: web.Request) -> web.StreamResponse:
    return web.Response(text="<html>oops</html>", content_type="text/html")


async def _no_text(request: web.Request) -> web.StreamResponse:
    return web.json_response({"reply": "Hi"})


async def _redirect(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(f"/ok?token={QUERY_SECRET}")


async def _no_location(request: web.Request) -> web.StreamResponse:
    return web.Response(status=307)


async def _huge(request: web.Request) -> web.StreamResponse:
    return web.json_response({"text": "a" * MAX_REPLY_BYTES})


async def _drop(request: web.Request) -> web.StreamResponse:
    assert request.transport is not None
    request.transport.close()  # the agent crashes mid-request: no status line at all
    await asyncio.sleep(1)
    return web.Response()


def misbehaving_app() -> web.Application:
    app = web.Application()
    app[SEEN_KEY] = []
    for path, handler in [
        ("/ok", _ok),
        ("/slow", _slow),
        ("/error", _error),
        ("/garbage", _garbage),
        ("/no-text", _no_text),
        ("/redirect", _redirect),
        ("/no-location", _no_location),
        ("/huge", _huge),
        ("/drop", _drop),
    ]:
        app.router.add_post(path, handler)
    return app


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> str:
        # Short shutdown: the slow handler is still sleeping when the test ends.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture(params=["plain", "egress-guarded"])
async def session(request: pytest.FixtureRequest) -> AsyncIterator[aiohttp.ClientSession]:
    """Each test twice: a plain session, and the App's (the test bed's policy allows 127.0.0.1)."""
    if request.param == "plain":
        made = aiohttp.ClientSession()
    else:
        made = webhook_session(load_policy(TESTBED_POLICY_FILE).egress, {("127.0.0.1", 8088)})
    async with made as client_session:
        yield client_session


@pytest.fixture
def client(session: aiohttp.ClientSession) -> WebhookClient:
    return WebhookClient(session, TIMEOUT_S)


@pytest.fixture
async def misbehaving(serve: Serve) -> tuple[str, web.Application]:
    app = misbehaving_app()
    return await serve(app), app


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on: bound, then released, so connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_ask_posts_json_with_user_agent(
    client: WebhookClient, misbehaving: tuple[str, web.Application]
) -> None:
    base, app = misbehaving
    assert await client.ask(f"{base}/ok", REQUEST, None) == WebhookReply("Hello there")
    ((headers, body),) = app[SEEN_KEY]
    # The body is the request plus this POST's delivery id, the same as in its header.
    assert body == replace(REQUEST, delivery_id=headers[DELIVERY_HEADER]).to_json()
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == f"ari-offload/{__version__}"
    assert SIGNATURE_HEADER not in headers
    assert TIMESTAMP_HEADER not in headers
    assert client.stats.requests == 1
    assert client.stats.succeeded == 1


async def test_signature_round_trip(
    session: aiohttp.ClientSession, misbehaving: tuple[str, web.Application]
) -> None:
    base, app = misbehaving
    client = WebhookClient(session, TIMEOUT_S, clock=lambda: 1_700_000_000.7)
    await client.ask(f"{base}/ok", REQUEST, SECRET)
    ((headers, body),) = app[SEEN_KEY]
    assert headers[TIMESTAMP_HEADER] == "1700000000"
    assert verify(body, headers, SECRET, now=1_700_000_100)
    assert not verify(body + b" ", headers, SECRET, now=1_700_000_100)
    assert not verify(body, headers, "wrong-secret", now=1_700_000_100)
    assert not verify(body, headers, SECRET, now=1_700_000_400)  # replayed too late


FAILURES = [
    ("/slow", WebhookTimeout, "timeout", "did not answer within 0.3 s"),
    (
        "/error",
        WebhookStatusError,
        "status",
        "answered HTTP 500: Traceback (most recent call last): boom",
    ),
    ("/garbage", WebhookBadReply, "bad_reply", "sent a bad reply: reply is not JSON"),
    ("/no-text", WebhookBadReply, "bad_reply", 'reply has no "text" field (its keys: reply)'),
    ("/redirect", WebhookStatusError, "status", "answered HTTP 302 redirecting to http://"),
    ("/no-location", WebhookStatusError, "status", "HTTP 307 redirecting to (no Location)"),
    ("/huge", WebhookBadReply, "bad_reply", f"larger than {MAX_REPLY_BYTES} bytes"),
    ("/drop", WebhookUnreachable, "unreachable", "is unreachable: ServerDisconnectedError"),
]


@pytest.mark.parametrize(("path", "error", "kind", "message"), FAILURES)
async def test_ask_maps_each_failure(
    client: WebhookClient,
    misbehaving: tuple[str, web.Application],
    path: str,
    error: type[WebhookError],
    kind: str,
    message: str,
) -> None:
    base, _ = misbehaving
    with pytest.raises(error) as caught:
        await client.ask(f"{base}{path}?key={QUERY_SECRET}", REQUEST, SECRET)
    text = str(caught.value)
    assert f"webhook {base}{path} " in text  # names the URL, without its query string
    assert message in text
    assert QUERY_SECRET not in text
    assert SECRET not in text
    assert client.stats.failures == {kind: 1}


@pytest.mark.parametrize(("path", "error", "kind", "message"), FAILURES)
async def test_ask_or_fallback_never_raises(
    client: WebhookClient,
    misbehaving: tuple[str, web.Application],
    caplog: pytest.LogCaptureFixture,
    path: str,
    error: type[WebhookError],
    kind: str,
    message: str,
) -> None:
    base, _ = misbehaving
    caplog.set_level(logging.DEBUG, logger="ari_offload.agent")
    answer = await client.ask_or_fallback(
        f"{base}{path}?key={QUERY_SECRET}", REQUEST, SECRET, FALLBACK
    )
    assert answer.reply == WebhookReply(FALLBACK)
    assert isinstance(answer.error, error)
    assert 0 < answer.duration_s < TIMEOUT_S + 0.5
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"({kind})" in warnings[0].getMessage()
    assert QUERY_SECRET not in caplog.text
    assert SECRET not in caplog.text


async def test_status_error_carries_the_status(
    client: WebhookClient, misbehaving: tuple[str, web.Application]
) -> None:
    base, _ = misbehaving
    with pytest.raises(WebhookStatusError) as caught:
        await client.ask(f"{base}/redirect", REQUEST, None)
    assert caught.value.status == 302
    assert f"redirecting to {base}/ok;" in str(caught.value)  # the target, query stripped


async def test_timeout_is_enforced(
    client: WebhookClient, misbehaving: tuple[str, web.Application]
) -> None:
    base, _ = misbehaving
    start = time.perf_counter()
    answer = await client.ask_or_fallback(f"{base}/slow", REQUEST, None, FALLBACK)
    assert isinstance(answer.error, WebhookTimeout)
    assert TIMEOUT_S <= time.perf_counter() - start < TIMEOUT_S + 0.5


async def test_connection_refused(client: WebhookClient, closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/hook?key={QUERY_SECRET}"
    with pytest.raises(WebhookUnreachable) as caught:
        await client.ask(url, REQUEST, None)
    assert str(caught.value) == (
        f"webhook http://127.0.0.1:{closed_port}/hook is unreachable: Connection refused"
    )
    answer = await client.ask_or_fallback(url, REQUEST, None, FALLBACK)
    assert isinstance(answer.error, WebhookUnreachable)
    assert answer.reply.text == FALLBACK
    assert client.stats.failures == {"unreachable": 2}


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("not a url", "'not a url'"),
        (f"ftp://127.0.0.1/hook?key={QUERY_SECRET}", "'ftp://127.0.0.1/hook'"),
        ("http://", "'http://'"),
    ],
)
async def test_invalid_url_is_unreachable(client: WebhookClient, url: str, shown: str) -> None:
    with pytest.raises(WebhookUnreachable) as caught:
        await client.ask(url, REQUEST, None)
    assert str(caught.value) == f"webhook URL {shown} is not a valid http:// or https:// URL"


async def test_peer_that_is_not_http(client: WebhookClient) -> None:
    async def banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n")  # e.g. the webhook URL names the SSH port
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(banner, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(WebhookUnreachable) as caught:
            await client.ask(f"http://127.0.0.1:{port}/hook?key={QUERY_SECRET} x", REQUEST, None)
    assert str(caught.value).startswith(
        f"webhook http://127.0.0.1:{port}/hook is unreachable: ClientResponseError: Bad status line"
    )
    assert QUERY_SECRET not in str(caught.value)


async def test_cancellation_propagates_and_is_not_a_failure(
    client: WebhookClient, misbehaving: tuple[str, web.Application]
) -> None:
    # The caller hangs up while the agent thinks: the turn is cancelled, not answered.
    base, _ = misbehaving
    task = asyncio.create_task(client.ask_or_fallback(f"{base}/slow", REQUEST, None, FALLBACK))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert client.stats.requests == 0


async def test_stats_shared_and_counted_by_kind(
    session: aiohttp.ClientSession, misbehaving: tuple[str, web.Application]
) -> None:
    base, _ = misbehaving
    stats = WebhookStats()
    first, second = (
        WebhookClient(session, TIMEOUT_S, stats=stats),
        WebhookClient(session, TIMEOUT_S, stats=stats),
    )
    for client, path in [
        (first, "/ok"),
        (first, "/error"),
        (second, "/error"),
        (second, "/garbage"),
        (second, "/ok"),
    ]:
        await client.ask_or_fallback(f"{base}{path}", REQUEST, None, FALLBACK)
    assert stats.requests == 5
    assert stats.succeeded == 2
    assert stats.failures == {"status": 2, "bad_reply": 1}


def test_timeout_must_be_positive(session: aiohttp.ClientSession) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        WebhookClient(session, 0)


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://agent.example/hook?token=abc#frag", "https://agent.example/hook"),
        ("https://user:pw@agent.example:8443/a/b?x=1", "https://agent.example:8443/a/b"),
        ("http://[::1/hook?token=abc", "http://[::1/hook"),
    ],
)
def test_safe_url_hides_secrets(url: str, safe: str) -> None:
    assert safe_url(url) == safe


# -- the sample agent ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("I forgot my password", WebhookReply(RESET_REPLY)),
        ("Can you reset my pass word?", WebhookReply(RESET_REPLY)),
        ("What are your opening hours?", WebhookReply(HOURS_REPLY)),
        ("Are you open on Saturday?", WebhookReply(HOURS_REPLY)),
        ("Thanks, goodbye.", WebhookReply(GOODBYE_REPLY, hangup=True)),
        ("OK bye!", WebhookReply(GOODBYE_REPLY, hangup=True)),
        ("What's the weather like?", WebhookReply(DEFAULT_REPLY)),
        ("They will reopen the byelaw debate", WebhookReply(DEFAULT_REPLY)),
    ],
)
def test_sample_rules(text: str, reply: WebhookReply) -> None:
    assert sample_reply(text) == reply


async def test_sample_agent_answers_over_http(client: WebhookClient, serve: Serve) -> None:
    app = make_sample_agent_app()
    url = f"{await serve(app)}/ai-webhook"
    answers: list[AgentAnswer] = []
    for turn, text in enumerate(["password please", "when are you open", "bye"], start=1):
        request = WebhookRequest("call-1", "agent-1", text, turn, heard=None)
        answers.append(await client.ask_or_fallback(url, request, None, FALLBACK))
    assert [a.reply for a in answers] == [
        WebhookReply(RESET_REPLY),
        WebhookReply(HOURS_REPLY),
        WebhookReply(GOODBYE_REPLY, hangup=True),
    ]
    assert all(a.error is None for a in answers)
    assert [r.text for r in app[RECEIVED_KEY]] == ["password please", "when are you open", "bye"]


async def test_sample_agent_checks_signatures(session: aiohttp.ClientSession, serve: Serve) -> None:
    app = make_sample_agent_app(SECRET)
    url = f"{await serve(app)}/ai-webhook"
    client = WebhookClient(session, TIMEOUT_S)
    assert (await client.ask(url, REQUEST, SECRET)).text == RESET_REPLY
    for secret in ["wrong-secret", None]:
        with pytest.raises(WebhookStatusError, match="answered HTTP 401") as caught:
            await client.ask(url, REQUEST, secret)
        assert caught.value.status == 401
    stale = WebhookClient(session, TIMEOUT_S, clock=lambda: time.time() - 3600)
    with pytest.raises(WebhookStatusError, match="more than 300 s away"):
        await stale.ask(url, REQUEST, SECRET)
    assert len(app[RECEIVED_KEY]) == 1  # rejected requests are not kept


async def test_sample_agent_rejects_malformed_requests(
    session: aiohttp.ClientSession, serve: Serve
) -> None:
    base = await serve(make_sample_agent_app())
    async with session.post(f"{base}/ai-webhook", data=b'{"text": "hi"}') as resp:
        assert resp.status == 400
        assert "call_id" in (await resp.json())["error"]


async def test_run_sample_agent_serves_healthz(session: aiohttp.ClientSession) -> None:
    runner = await run_sample_agent("127.0.0.1", 0)
    try:
        host, port = runner.addresses[0][:2]
        async with session.get(f"http://{host}:{port}/healthz") as resp:
            assert resp.status == 200
            assert await resp.json() == {"status": "ok"}
    finally:
        await runner.cleanup()


async def test_a_whole_json_reply_carries_its_actions(client: WebhookClient, serve: Serve) -> None:
    collect = {"type": "collect", "max_digits": 4, "terminator": "#"}
    replies = iter([
        {"text": "Your PIN, then hash.", "actions": [collect]},
        {"text": "", "actions": [{"type": "send_dtmf", "digits": "1w2"}]},  # actions only
    ])  # fmt: skip

    async def hook(request: web.Request) -> web.StreamResponse:
        return web.json_response(next(replies))

    app = web.Application()
    app.router.add_post("/hook", hook)
    base = await serve(app)

    pieces = [p async for p in client.stream(f"{base}/hook", REQUEST, None)]
    assert [p.actions for p in pieces] == [(Collect(4, "#"),)]
    reply = await client.ask(f"{base}/hook", REQUEST, None)
    assert reply == WebhookReply("", actions=(SendDtmf("1w2"),))
