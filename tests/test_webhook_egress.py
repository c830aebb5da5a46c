"""The webhook egress guard, attacked as a tenant would: SSRF through an agent's webhook URL.

Create-time refusals go through the real API; connect-time refusals go through the real
WebhookClient and the session the App uses, against real listening sockets on 127.0.0.1 that
count the connections they accept: a refused webhook must never be reached, not just fail.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ari_offload.agent.client import WebhookClient
from ari_offload.agent.contract import (
    DELIVERY_HEADER,
    WebhookRequest,
    parse_request,
    verify,
)
from ari_offload.agent.egress import webhook_session
from ari_offload.errors import WebhookUnreachable
from ari_offload.policy import Policy
from ari_offload.policy_file import load_policy
from testbed.asterisk import TESTBED_POLICY_FILE
from tests.api_support import ApiEnv, running_api

TESTBED_EGRESS = load_policy(TESTBED_POLICY_FILE).egress
STRICT = Policy()  # the built-in default: webhooks to public addresses only
REQUEST = WebhookRequest("call-1", "agent-1", "hello", 1, heard=None)
SECRET = "0123456789abcdef-long-enough"


class Listener:
    """A TCP server on 127.0.0.1 that counts accepted connections and answers nothing useful."""

    def __init__(self) -> None:
        self.accepted = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> Listener:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\n{"text":"hi"}\n')
        await writer.drain()
        writer.close()

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    server = await Listener().start()
    yield server
    await server.stop()


async def _create_agent(env: ApiEnv, token: str, webhook: str, **more: Any) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            env.url("/v1.0/agents"),
            json={"name": f"a-{uuid.uuid4().hex[:8]}", "webhook": webhook, **more},
            headers={"Authorization": f"Bearer {token}"},
        ) as r,
    ):
        return r.status, await r.json()


async def _patch_agent(env: ApiEnv, token: str, agent_id: str, body: Any) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.patch(
            env.url(f"/v1.0/agents/{agent_id}"),
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        ) as r,
    ):
        return r.status, await r.json()


# --- create time: URLs that can never be allowed ---------------------------------------------


async def test_credentials_in_the_url_are_refused_at_create_time(
    tmp_path: Path, listener: Listener
) -> None:
    async with running_api(tmp_path) as env:
        token = await env.signup("mallory", "password1")
        url = f"http://ari:hunter2@127.0.0.1:{listener.port}/"
        status, body = await _create_agent(env, token, url)
        assert status == 422, body
        assert body["error"]["field"] == "webhook"
        assert "credentials" in body["error"]["message"]
        assert "hunter2" not in body["error"]["message"]
        # Also through PATCH of an agent that was fine.
        status, agent = await _create_agent(env, token, f"http://127.0.0.1:{listener.port}/")
        assert status == 201, agent
        status, body = await _patch_agent(env, token, agent["id"], {"webhook": url})
        assert (status, body["error"]["field"]) == (422, "webhook")
    assert listener.accepted == 0


@pytest.mark.parametrize(
    ("webhook", "rule"),
    [
        ("http://169.254.169.254/latest/meta-data/", "egress.allow"),
        ("http://[::ffff:169.254.169.254]/latest/meta-data/", "egress.allow"),
        ("http://10.0.0.1/hook", "egress.allow"),
        ("http://[fd00::1]/hook", "egress.allow"),
        ("http://127.0.0.2/hook", "egress.allow"),  # the test bed allows 127.0.0.1/32 only
        ("http://0.0.0.0:9000/hook", "egress.allow"),
        ("http://127.0.0.1:8088/ari/channels", "egress.deny_ports"),  # ARI, although allowed
    ],
)
async def test_literal_addresses_the_policy_refuses_are_refused_at_create_time(
    tmp_path: Path, webhook: str, rule: str
) -> None:
    async with running_api(tmp_path) as env:
        token = await env.signup("mallory", "password1")
        status, body = await _create_agent(env, token, webhook)
    assert status == 403, body
    assert body["error"]["code"] == "policy_refused"
    assert body["error"]["field"] == "webhook"
    assert rule in body["error"]["message"]


async def test_the_apis_own_port_is_refused_at_create_time(tmp_path: Path) -> None:
    async with running_api(tmp_path) as env:
        token = await env.signup("mallory", "password1")
        status, body = await _create_agent(env, token, env.url("/v1.0/agents"))
    assert status == 403, body
    assert "egress.deny_ports" in body["error"]["message"]


async def test_allowed_and_public_webhooks_are_still_accepted(tmp_path: Path) -> None:
    async with running_api(tmp_path) as env:
        token = await env.signup("alice", "password1")
        for webhook in (
            "http://127.0.0.1:9000/ai-webhook",
            "https://agent.example/hook?token=x",
            "http://localhost:8088/",  # a name: checked at connect time, it may change
            "http://8.8.8.8/hook",
        ):
            status, body = await _create_agent(env, token, webhook)
            assert status == 201, (webhook, body)


@pytest.mark.parametrize(
    ("events_url", "status", "rule"),
    [
        ("http://169.254.169.254/latest/meta-data/", 403, "egress.allow"),
        ("http://10.0.0.1/events", 403, "egress.allow"),
        ("http://127.0.0.1:8088/ari/channels", 403, "egress.deny_ports"),
        ("http://ari:hunter2@127.0.0.1:9000/events", 422, "credentials"),
        ("ftp://agent.example/events", 422, "must match ^https?://"),
    ],
)
async def test_the_events_url_is_held_to_the_webhooks_rules(
    tmp_path: Path, events_url: str, status: int, rule: str
) -> None:
    # The same egress policy and URL rules: a tenant cannot reach through its events URL
    # what its webhook may not reach.
    async with running_api(tmp_path) as env:
        token = await env.signup("mallory", "password1")
        webhook = "http://127.0.0.1:9000/ai-webhook"
        got, body = await _create_agent(env, token, webhook, events_url=events_url)
        assert (got, body["error"]["field"]) == (status, "events_url"), body
        assert rule in body["error"]["message"]
        assert "hunter2" not in body["error"]["message"]
        got, agent = await _create_agent(env, token, webhook)
        assert (got, agent["events_url"]) == (201, None)
        got, body = await _patch_agent(env, token, agent["id"], {"events_url": events_url})
        assert (got, body["error"]["field"]) == (status, "events_url"), body


async def test_an_allowed_events_url_is_kept_and_can_be_cleared(tmp_path: Path) -> None:
    async with running_api(tmp_path) as env:
        token = await env.signup("alice", "password1")
        url = "https://agent.example/events?token=x"
        got, agent = await _create_agent(env, token, "http://127.0.0.1:9000/h", events_url=url)
        assert (got, agent["events_url"]) == (201, url)
        got, agent = await _patch_agent(env, token, agent["id"], {"events_url": None})
        assert (got, agent["events_url"]) == (200, None)


@pytest.mark.parametrize("secret", ["", "short", "fifteen-chars!!"])
async def test_short_secrets_are_refused(tmp_path: Path, secret: str) -> None:
    async with running_api(tmp_path) as env:
        token = await env.signup("alice", "password1")
        status, body = await _create_agent(env, token, "http://127.0.0.1:9/x", secret=secret)
        assert (status, body["error"]["field"]) == (422, "secret")
        assert "16" in body["error"]["message"]
        status, agent = await _create_agent(env, token, "http://127.0.0.1:9/x", secret=SECRET)
        assert status == 201
        assert agent["has_secret"]
        status, body = await _patch_agent(env, token, agent["id"], {"secret": secret})
        assert (status, body["error"]["field"]) == (422, "secret")


# --- connect time: names, rebinding, the server's own ports ----------------------------------


async def test_a_name_resolving_to_loopback_is_accepted_then_refused_at_connect_time(
    tmp_path: Path, listener: Listener
) -> None:
    # A name may point anywhere by the time a call comes: the API cannot refuse it ...
    webhook = f"http://localhost:{listener.port}/hook?token=secret-token"
    async with running_api(tmp_path, policy=STRICT) as env:
        token = await env.signup("mallory", "password1")
        status, agent = await _create_agent(env, token, webhook)
    assert status == 201, agent
    # ... so the session the App uses refuses every address it resolves to, before connecting.
    async with webhook_session(STRICT.egress, set()) as session:
        client = WebhookClient(session, 2.0)
        with pytest.raises(WebhookUnreachable) as caught:
            await client.ask(webhook, REQUEST, SECRET)
        answer = await client.ask_or_fallback(webhook, REQUEST, SECRET, "Sorry?")
    message = str(caught.value)
    assert "localhost resolves only to" in message
    assert "127.0.0.1" in message
    assert "egress.allow" in message
    assert "secret-token" not in message
    assert SECRET not in message
    assert answer.reply.text == "Sorry?"
    assert isinstance(answer.error, WebhookUnreachable)
    assert listener.accepted == 0


@pytest.mark.parametrize(
    ("host", "said"),
    [
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("[::ffff:127.0.0.1]", "(IPv4-mapped 127.0.0.1) is a loopback address"),
        ("0.0.0.0", "0.0.0.0 is the unspecified address"),  # Linux connects it to loopback
        ("2130706433", "not a valid"),  # legacy numeric forms of 127.0.0.1
        ("127.1", "not a valid"),
    ],
)
async def test_a_literal_loopback_address_is_refused_at_connect_time(
    listener: Listener, host: str, said: str
) -> None:
    # An agent stored before the guard (or under another policy) is refused when it is used.
    async with webhook_session(STRICT.egress, set()) as session:
        with pytest.raises(WebhookUnreachable) as caught:
            await WebhookClient(session, 2.0).ask(
                f"http://{host}:{listener.port}/?k=v", REQUEST, None
            )
    assert said in str(caught.value)
    assert "k=v" not in str(caught.value)
    assert listener.accepted == 0


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
async def test_the_ari_and_api_ports_are_refused_even_on_an_allowed_address(
    listener: Listener, host: str
) -> None:
    # The test bed allows 127.0.0.1; the listener stands in for ARI on that address.
    refused = {("127.0.0.1", listener.port)}
    async with webhook_session(TESTBED_EGRESS, refused) as session:
        with pytest.raises(WebhookUnreachable) as caught:
            await WebhookClient(session, 2.0).ask(
                f"http://{host}:{listener.port}/ari/channels", REQUEST, None
            )
    assert "egress.deny_ports" in str(caught.value)
    assert listener.accepted == 0


async def test_credentials_stored_before_the_guard_are_not_sent(listener: Listener) -> None:
    async with webhook_session(TESTBED_EGRESS, set()) as session:
        with pytest.raises(WebhookUnreachable) as caught:
            await WebhookClient(session, 2.0).ask(
                f"http://ari:hunter2@127.0.0.1:{listener.port}/", REQUEST, None
            )
    assert "credentials" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    assert listener.accepted == 0


async def test_an_allowed_address_works_end_to_end(listener: Listener) -> None:
    async with webhook_session(TESTBED_EGRESS, {("127.0.0.1", 8088)}) as session:
        reply = await WebhookClient(session, 2.0).ask(
            f"http://127.0.0.1:{listener.port}/hook", REQUEST, None
        )
    assert reply.text == "hi"
    assert listener.accepted == 1


async def test_the_session_shares_no_cookies_and_ignores_proxy_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[str | None] = []

    async def hook(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Cookie"))
        response = web.json_response({"text": "ok"})
        response.set_cookie("tenant", "a-secret-of-tenant-a")
        return response

    runner, port = await _serve_hook(hook)
    # A proxy in the environment must not see (or redirect) webhook traffic.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")
    try:
        async with webhook_session(TESTBED_EGRESS, set()) as session:
            client = WebhookClient(session, 2.0)
            for _ in range(2):  # a name: aiohttp's default jar keeps no cookies for IPs
                await client.ask(f"http://localhost:{port}/hook", REQUEST, None)
    finally:
        await runner.cleanup()
    assert seen == [None, None]


# --- delivery id -----------------------------------------------------------------------------


async def test_every_request_carries_a_unique_signed_delivery_id() -> None:
    seen: list[tuple[dict[str, str], bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        seen.append((dict(request.headers), await request.read()))
        return web.json_response({"text": "ok"})

    runner, port = await _serve_hook(hook)
    try:
        async with webhook_session(TESTBED_EGRESS, set()) as session:
            client = WebhookClient(session, 2.0)
            for _ in range(3):
                await client.ask(f"http://127.0.0.1:{port}/hook", REQUEST, SECRET)
    finally:
        await runner.cleanup()
    ids = [headers[DELIVERY_HEADER] for headers, _ in seen]
    assert len(set(ids)) == 3
    for (headers, body), delivery in zip(seen, ids, strict=True):
        assert uuid.UUID(delivery).version == 4
        # The same id is in the signed body: a replay with a forged header is still a replay.
        assert json.loads(body)["delivery_id"] == delivery
        assert parse_request(body).delivery_id == delivery
        assert verify(body, headers, SECRET, now=float(headers["X-Ari-Offload-Timestamp"]))


async def _serve_hook(
    hook: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> tuple[web.AppRunner, int]:
    """A real webhook at http://127.0.0.1:<port>/hook; the caller cleans the runner up."""
    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port: int = runner.addresses[0][1]
    return runner, port
