"""The webhook helper on real servers: the docs' aiohttp and Flask examples (docs/examples/,
the very code docs/webhook.md shows) served on 127.0.0.1 and asked by ari-offload's own
WebhookClient, signed, for a plain and a streamed reply; bad signatures get 401."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import aiohttp
import pytest
from werkzeug.serving import make_server

from ari_offload.agent import Collect, Transfer, aiohttp_handler, flask_view
from ari_offload.agent.client import WebhookClient
from ari_offload.agent.contract import WebhookReply, WebhookRequest, sign
from ari_offload.errors import WebhookStatusError
from tests.test_agent_client import Serve, serve  # noqa: F401 (fixture)

ROOT = Path(__file__).parents[1]
EXAMPLES = ROOT / "docs" / "examples"
DOC = ROOT / "docs" / "webhook.md"
SECRET = "whsec-helper-0123456789"
REQUEST = WebhookRequest("call-1", "agent-1", "I forgot my password", 1, heard=None)
FIRST = "Let me look that up for you, "
PAUSE_S = 0.5  # the examples' pause between their two streamed pieces


def _example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"docs_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Agent:
    """A served example: its base URL, and whether a stream's generator was closed."""

    def __init__(self, base: str, closed: threading.Event) -> None:
        self.base, self.closed = base, closed


@contextmanager
def _flask_server(app: object) -> Iterator[str]:
    # Threaded: HTTP/1.1 with chunked responses, as a production WSGI server would send.
    server = make_server("127.0.0.1", 0, app, threaded=True)  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, name="flask-agent", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


@pytest.fixture(params=["aiohttp", "flask"])
async def agent(request: pytest.FixtureRequest, serve: Serve) -> AsyncIterator[Agent]:  # noqa: F811
    closed = threading.Event()  # set by the endless stream's generator when it is closed
    if request.param == "aiohttp":

        async def endless(hook: WebhookRequest) -> AsyncIterator[str]:
            try:
                yield FIRST
                while True:
                    await asyncio.sleep(0.05)
                    yield "more "
            finally:
                closed.set()

        app = _example("aiohttp_agent").make_app(SECRET)
        app.router.add_post("/endless", aiohttp_handler(endless, secret=SECRET))
        yield Agent(await serve(app), closed)
        return

    def endless_sync(hook: WebhookRequest) -> Iterator[str]:
        try:
            yield FIRST
            while True:
                time.sleep(0.05)
                yield "more "
        finally:
            closed.set()

    flask_app = _example("flask_agent").make_app(SECRET)
    flask_app.post("/endless")(flask_view(endless_sync, secret=SECRET))
    with _flask_server(flask_app) as base:
        yield Agent(base, closed)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as made:
        yield made


@pytest.fixture
def client(session: aiohttp.ClientSession) -> WebhookClient:
    return WebhookClient(session, 2.0, stream_timeout_s=5.0)


async def test_a_plain_reply(agent: Agent, client: WebhookClient) -> None:
    url = f"{agent.base}/ai-webhook"
    assert await client.ask(url, REQUEST, SECRET) == WebhookReply(f"You said: {REQUEST.text}")
    bye = WebhookRequest("call-1", "agent-1", "OK, bye", 2, heard=None)
    assert await client.ask(url, bye, SECRET) == WebhookReply("Goodbye!", hangup=True)
    assert client.stats.succeeded == 2


async def test_a_streamed_reply_arrives_piece_by_piece(agent: Agent, client: WebhookClient) -> None:
    url = f"{agent.base}/ai-webhook/streamed"
    start = time.monotonic()
    arrivals: list[tuple[float, str]] = []
    async for piece in client.stream(url, REQUEST, SECRET):
        if piece.text:
            arrivals.append((time.monotonic() - start, piece.text))
    assert [text for _, text in arrivals] == [FIRST, f"you said: {REQUEST.text}"]
    # The first piece came before the agent had written the second: it was not buffered.
    assert arrivals[1][0] - arrivals[0][0] > PAUSE_S * 0.6
    whole = await client.ask(url, REQUEST, SECRET)
    assert whole == WebhookReply(f"{FIRST}you said: {REQUEST.text}")


async def test_the_stream_is_ndjson(agent: Agent, session: aiohttp.ClientSession) -> None:
    body = REQUEST.to_json()
    headers = sign(body, SECRET, int(time.time()))
    async with session.post(f"{agent.base}/ai-webhook/streamed", data=body, headers=headers) as r:
        assert r.status == 200
        assert r.content_type == "application/x-ndjson"
        lines = (await r.read()).splitlines()
    assert [json.loads(line) for line in lines] == [
        {"text": FIRST},
        {"text": f"you said: {REQUEST.text}"},
        {"done": True},
    ]


@pytest.mark.parametrize(
    ("secret", "skew_s", "code"),
    [
        ("wrong-secret-0123456789", 0, "bad_signature"),
        (None, 0, "missing_signature"),
        (SECRET, -3600, "stale_timestamp"),
    ],
)
async def test_a_bad_signature_gets_401_saying_why(
    agent: Agent, session: aiohttp.ClientSession, secret: str | None, skew_s: int, code: str
) -> None:
    client = WebhookClient(session, 2.0, clock=lambda: time.time() + skew_s)
    for path in ["/ai-webhook", "/ai-webhook/streamed"]:
        with pytest.raises(WebhookStatusError, match=f"answered HTTP 401: .*{code}") as caught:
            await client.ask(f"{agent.base}{path}", REQUEST, secret)
        assert caught.value.status == 401


async def test_a_bad_body_gets_400_naming_the_field(
    agent: Agent, session: aiohttp.ClientSession
) -> None:
    body = b'{"call_id": "c", "agent_id": "a", "text": "hi", "turn": "one"}'
    headers = sign(body, SECRET, int(time.time()))
    async with session.post(f"{agent.base}/ai-webhook", data=body, headers=headers) as resp:
        assert resp.status == 400
        assert resp.content_type == "application/json"
        got = await resp.json()
    assert got["code"] == "bad_field"
    assert got["field"] == "turn"
    assert '"turn" must be an integer' in got["error"]


async def test_a_barge_in_closes_the_agents_generator(
    agent: Agent, client: WebhookClient, caplog: pytest.LogCaptureFixture
) -> None:
    stream = client.stream(f"{agent.base}/endless", REQUEST, SECRET)
    assert (await anext(stream)).text == FIRST
    await stream.aclose()  # the caller talked over the reply: ari-offload hangs up on it
    assert await asyncio.to_thread(agent.closed.wait, 5), "the generator went on generating"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # a normal event


def test_the_docs_show_the_examples_exactly() -> None:
    """Each ``<!-- example: docs/examples/x.py -->`` block in webhook.md is that file."""
    shown = re.findall(
        r"<!-- example: (\S+) -->\n```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL
    )
    assert sorted(path for path, _ in shown) == [
        "docs/examples/aiohttp_agent.py",
        "docs/examples/flask_agent.py",
        "docs/examples/keys_agent.py",
    ]
    for path, code in shown:
        assert code == (ROOT / path).read_text(), f"docs/webhook.md shows an old {path}"


async def test_the_keys_example_asks_for_a_pin_then_transfers(
    serve: Serve,  # noqa: F811
    client: WebhookClient,
) -> None:
    """docs/examples/keys_agent.py, served, as ari-offload's own client reads its replies."""
    base = await serve(_example("keys_agent").make_app(SECRET))
    url = f"{base}/ai-webhook"
    ask_pin = Collect(max_digits=4, terminator="#", timeout_s=10)

    said = await client.ask(url, REQUEST, SECRET)
    assert said == WebhookReply("Please enter your PIN, then press hash.", actions=(ask_pin,))

    def keys(turn: int, digits: str, ended_by: str | None) -> WebhookRequest:
        return WebhookRequest("call-1", "agent-1", "", turn, None, type="dtmf", digits=digits,
                              ended_by=ended_by)  # fmt: skip

    wrong = await client.ask(url, keys(2, "9999", "terminator"), SECRET)
    assert wrong.actions == (ask_pin,)
    silent = await client.ask(url, keys(3, "", "timeout"), SECRET)
    assert silent.text.startswith("I did not get any keys")
    right = await client.ask(url, keys(4, "1234", "max_digits"), SECRET)
    assert right == WebhookReply("Thank you. Putting you through.", actions=(Transfer("desk"),))
    unasked = await client.ask(url, keys(5, "7", None), SECRET)
    assert unasked == WebhookReply("You pressed 7.")
