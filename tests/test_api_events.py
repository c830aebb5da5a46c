"""GET /v1.0/events on a real server, and the console's files: tenants kept apart, errors,
the SSE framing, resumption through the SDK, and the console's security headers.

The events are published straight into the app's hub here (the observers that publish them
from real calls are tests/integration/test_event_stream.py's).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import aiohttp
import pytest

from ari_offload.api.routes_console import CONSOLE_DIR
from ari_offload.api.routing import SERVICES
from ari_offload.config import ApiSettings
from ari_offload.observe.event_stream import EventHub, StreamEvent
from ari_offload.sdk.client import ApiError, Client
from ari_offload.sdk.events import Event
from tests.api_support import ApiEnv, running_api

STREAM = ApiSettings(host="127.0.0.1", port=0, stream_subscribers=2, stream_keepalive_s=0.3)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[ApiEnv]:
    async with running_api(tmp_path, settings=STREAM) as e:
        yield e


async def _tenant(env: ApiEnv, name: str) -> tuple[str, str]:
    token = await env.signup(name, "password-123")
    key = await env.store.keys.authenticate(token)
    assert key is not None
    return token, key.customer_id


def _hub(env: ApiEnv) -> EventHub:
    return env.app[SERVICES].events


def _said(hub: EventHub, customer: str, call: str, *texts: str) -> list[StreamEvent]:
    return [
        hub.publish(customer, "transcript.added", call, {"index": i, "role": "caller", "text": t})
        for i, t in enumerate(texts)
    ]


async def _collect(events: AsyncGenerator[Event, None], count: int, into: list[Event]) -> None:
    async with contextlib.aclosing(events):  # stopping early closes the connection at once
        async for event in events:
            into.append(event)
            if len(into) == count:
                return


async def _subscribed(hub: EventHub, customer: str, count: int) -> None:
    """Wait until ``count`` streams of the customer are open (the SDK connects in a task)."""
    async with asyncio.timeout(5):
        while hub.subscribers(customer) < count:
            await asyncio.sleep(0.02)


async def test_a_tenant_never_hears_of_another_tenants_calls(env: ApiEnv) -> None:
    """The attack: Bob subscribes, and resumes with an id of Alice's stream, to read her calls."""
    alice_key, alice = await _tenant(env, "alice")
    bob_key, bob = await _tenant(env, "bob")
    hub = _hub(env)
    heard_by: dict[str, list[Event]] = {"alice": [], "bob": []}
    async with Client(env.base_url, alice_key) as a, Client(env.base_url, bob_key) as b:
        readers = [
            asyncio.create_task(_collect(a.events(), 2, heard_by["alice"])),
            asyncio.create_task(_collect(b.events(), 1, heard_by["bob"])),
        ]
        await _subscribed(hub, alice, 1)
        await _subscribed(hub, bob, 1)
        secret = _said(hub, alice, "alice-call", "my card number is 4111", "and my PIN")
        resumed: list[Event] = []
        await _collect(b.events(last_event_id=secret[0].id), 1, resumed)
        mine = _said(hub, bob, "bob-call", "hello")
        async with asyncio.timeout(5):
            await asyncio.gather(*readers)

    assert [e.id for e in heard_by["alice"]] == [e.id for e in secret]
    assert [e.call_id for e in heard_by["bob"]] == ["bob-call"]
    assert [e.id for e in heard_by["bob"]] == [mine[0].id]
    # Alice's id means nothing in Bob's stream: it is past Bob's own count, so he is told to
    # reload (a reset) and gets his own history, which holds none of her events.
    assert resumed[0].type == "stream.reset"
    assert all("4111" not in str(e.data) for e in (*heard_by["bob"], *resumed))


async def test_a_key_is_needed_and_bad_ids_and_too_many_streams_are_refused(
    env: ApiEnv,
) -> None:
    token, customer = await _tenant(env, "alice")
    base = env.url("/v1.0/events")
    async with aiohttp.ClientSession() as http:
        async with http.get(base) as r:
            assert r.status == 401
            assert r.headers["WWW-Authenticate"].startswith("Bearer")
        async with http.get(base, headers={"Authorization": "Bearer ak_nope"}) as r:
            assert r.status == 401
        auth = {"Authorization": f"Bearer {token}"}
        async with http.get(base, headers={**auth, "Last-Event-ID": "not an id"}) as r:
            assert r.status == 422
            assert (await r.json())["error"]["field"] == "last_event_id"
        async with http.get(base, headers=auth, params={"last_event_id": "zz"}) as r:
            assert r.status == 422
        # Two streams are allowed here (STREAM): the third is refused while they are open.
        first = await http.get(base, headers=auth)
        second = await http.get(base, headers=auth)
        try:
            async with http.get(base, headers=auth) as r:
                assert r.status == 429
                assert (await r.json())["error"]["code"] == "too_many_streams"
                assert r.headers["Retry-After"].isdigit()
        finally:
            first.close()
            second.close()
        async with asyncio.timeout(5):  # a closed stream frees its place at its next write
            while _hub(env).full(customer):
                await asyncio.sleep(0.05)
        async with http.get(base, headers=auth) as r:
            assert r.status == 200


async def test_the_stream_is_sse_with_keepalives(env: ApiEnv) -> None:
    token, customer = await _tenant(env, "alice")
    async with (
        aiohttp.ClientSession() as http,
        http.get(env.url("/v1.0/events"), headers={"Authorization": f"Bearer {token}"}) as r,
    ):
        assert r.status == 200
        assert r.content_type == "text/event-stream"
        assert r.headers["Cache-Control"] == "no-store"
        assert await r.content.readline() == b"retry: 3000\n"
        assert await r.content.readline() == b"\n"
        async with asyncio.timeout(3):  # nothing happens: a comment line every 0.3 s
            assert await r.content.readline() == b": keepalive\n"
        (event,) = _said(_hub(env), customer, "call-1", "hi")
        async with asyncio.timeout(3):
            while (line := await r.content.readline()) == b": keepalive\n" or line == b"\n":
                pass
        assert line == f"id: {event.id}\n".encode()
        assert await r.content.readline() == b"event: transcript.added\n"
        assert (await r.content.readline()).startswith(b'data: {"id":')


async def test_the_sdk_resumes_after_a_drop_and_misses_nothing(env: ApiEnv) -> None:
    token, customer = await _tenant(env, "alice")
    hub = _hub(env)
    got: list[Event] = []
    async with Client(env.base_url, token) as client:
        reader = asyncio.create_task(_collect(client.events(), 4, got))
        await _subscribed(hub, customer, 1)
        before = _said(hub, customer, "call-1", "one", "two")
        async with asyncio.timeout(5):
            while len(got) < 2:
                await asyncio.sleep(0.02)
        hub.close()  # the server cuts the stream (as it does a reader that fell behind)
        missed = _said(hub, customer, "call-1", "three", "four")  # while it is away
        async with asyncio.timeout(10):
            await reader

    assert [e.id for e in got] == [e.id for e in (*before, *missed)]
    assert [e.data["text"] for e in got] == ["one", "two", "three", "four"]


async def test_the_sdk_raises_on_a_refused_key(env: ApiEnv) -> None:
    async with Client(env.base_url, "ak_nope") as client:
        with pytest.raises(ApiError) as refused:
            async for _ in client.events():
                pass
    assert refused.value.status == 401


async def test_open_streams_do_not_hold_up_the_servers_stop(tmp_path: Path) -> None:
    async with running_api(tmp_path, settings=STREAM) as env:
        token, customer = await _tenant(env, "alice")
        http = aiohttp.ClientSession()
        stream = await http.get(
            env.url("/v1.0/events"), headers={"Authorization": f"Bearer {token}"}
        )
        await _subscribed(_hub(env), customer, 1)
        stopping = time.monotonic()
    stopped_in = time.monotonic() - stopping
    stream.close()
    await http.close()
    assert stopped_in < 5, f"the server took {stopped_in:.1f} s to stop"  # aiohttp waits 60


# --- the console's files --------------------------------------------------------------------


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline: list[str] = []  # inline handlers, style attributes, inline scripts
        self.refs: list[str] = []
        self.labels: set[str] = set()
        self.inputs: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        self.inline += [f"{tag} {n}" for n, _ in attrs if n.startswith("on") or n == "style"]
        if tag == "script":
            self.scripts.append(named)
            self._in_script = True
        for attr in ("src", "href"):
            value = named.get(attr)
            if value and value.startswith("/console/"):
                self.refs.append(value)
        if tag == "label" and named.get("for"):
            self.labels.add(str(named["for"]))
        if tag in ("input", "select", "textarea"):
            self.inputs.append(str(named.get("id")))
            assert "name" not in named, f"{named.get('id')}: a named field could be submitted"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append("script body")


async def test_the_console_is_served_with_a_strict_policy_and_no_inline_code(env: ApiEnv) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(env.url("/console")) as r:
            assert r.status == 200
            assert r.content_type == "text/html"
            html = await r.text()
            csp = r.headers["Content-Security-Policy"]
            assert r.headers["X-Frame-Options"] == "DENY"
            assert r.headers["Referrer-Policy"] == "no-referrer"
        page = _Page()
        page.feed(html)
        modules = [f"/console/{p.name}" for p in CONSOLE_DIR.glob("*.js")]
        for ref in (*page.refs, *modules):
            async with http.get(env.url(ref)) as r:
                assert r.status == 200, ref
                assert r.headers["Content-Security-Policy"] == csp
        for probe in ("/console/nope.js", "/console/..%2Fapp.py", "/console/index.html"):
            async with http.get(env.url(probe)) as r:
                assert r.status == 404, probe

    policy = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"  # no 'unsafe-inline', no other origin
    assert policy["connect-src"] == "'self'"
    assert policy["form-action"] == "'none'"
    assert policy["require-trusted-types-for"] == "'script'"
    assert page.inline == []
    assert [s.get("src") for s in page.scripts] == ["/console/main.js"]
    assert set(page.inputs) <= page.labels, "every field has a label"
    # Every module the page loads is served, and none builds HTML from strings or puts the
    # key anywhere but the Authorization header.
    scripts = {p.name: p.read_text() for p in CONSOLE_DIR.glob("*.js")}
    for name, text in scripts.items():
        for imported in re.findall(r"from '\./([\w-]+\.js)'", text):
            assert imported in scripts, f"{name} imports {imported}"
        assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", text), name
        assert "accesskey=" not in text.lower(), name  # the query form of the key
        assert "localStorage" not in text, name  # session storage only: gone with the tab
