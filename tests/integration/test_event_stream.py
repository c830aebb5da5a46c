"""The event stream on a real call: the whole app, a real SIPp caller through the test-bed
Asterisk, a real webhook server, and three readers of GET /v1.0/events: one reads it all
(the SDK), one drops its connection mid-call and resumes with its last id (the SDK), and one
never reads a byte (a raw socket) while the call goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from ari_offload.app import App
from ari_offload.config import ApiSettings, PolicySettings, Settings, StoreSettings
from ari_offload.sdk.client import Client
from ari_offload.sdk.events import Event
from ari_offload.speech.models import SpeechModels
from testbed.asterisk import TESTBED_ARI, TESTBED_POLICY_FILE, Testbed
from testbed.dialogue import Say, Silence, run_dialogue
from tests.integration.conftest import free_port
from tests.integration.helpers import heard

pytestmark = [pytest.mark.integration, pytest.mark.models]

log = logging.getLogger(__name__)
log.setLevel(logging.INFO)  # shown with --log-cli-level=INFO (the autouse fixture sets WARNING)

LONG_REPLY = (
    "Let me tell you about all of our plans. The basic plan costs ten dollars a month. "
    "The standard plan costs twenty dollars a month and adds support. "
    "The premium plan costs fifty dollars a month and adds a personal manager. "
    "All plans can be cancelled at any time."
)
# A small bound, so that one call's events overflow a reader that never reads: dropped when
# more than 2 KB behind (queued, or in its socket unacknowledged; the default is 256 KB).
BACKLOG_BYTES = 2048


@pytest.fixture
async def stream_app(
    testbed: Testbed, speech_models: SpeechModels, tmp_path: Path
) -> AsyncIterator[App]:
    settings = Settings(
        ari=TESTBED_ARI,
        api=ApiSettings(port=free_port(), stream_backlog_bytes=BACKLOG_BYTES),
        store=StoreSettings(data_dir=tmp_path),
        policy=PolicySettings(file=TESTBED_POLICY_FILE),
    )
    running = await App.start(settings, models=speech_models)
    await running.service.wait_connected()
    yield running
    await running.stop()


@pytest.fixture
async def talkative() -> AsyncIterator[str]:
    """A webhook that answers the first turn at length (to be interrupted), then briefly."""
    asked: list[object] = []

    async def hook(request: web.Request) -> web.Response:
        asked.append(await request.json())
        return web.json_response(
            {"text": LONG_REPLY if len(asked) == 1 else "Okay, the basic plan."}
        )

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    await runner.cleanup()


async def _read_until_ended(events: AsyncGenerator[Event, None], into: list[Event]) -> None:
    async with contextlib.aclosing(events):
        async for event in events:
            into.append(event)
            if event.type == "call.ended":
                return


async def _stalled_reader(port: int, token: str) -> socket.socket:
    """A reader that asks for the stream and never reads, its receive buffer as small as Linux
    allows: what it does not read backs up into the server's socket after ~2 KB (a reader with
    the usual buffers would fill them first, then back up the same way)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    request = (
        f"GET /v1.0/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    )
    await asyncio.get_running_loop().sock_sendall(sock, request.encode())
    return sock


async def test_a_real_call_streams_in_order_resumes_after_a_drop_and_sheds_a_stalled_reader(
    stream_app: App,
    talkative: str,
    speech_models: SpeechModels,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = stream_app
    hub = app.stream
    client = await Client.signup(app.api_url, "streamer", "password-123")
    agent = await client.agents.create("talkative", webhook=talkative)
    flow = await client.flows.create(
        "plans", [{"type": "ai_talk", "agent_id": agent.id, "welcome_message": "Hi!"}]
    )
    key = await app.store.keys.authenticate(client.accesskey)
    assert key is not None
    customer = key.customer_id
    everything: list[Event] = []
    reader = asyncio.create_task(_read_until_ended(client.events(), everything))
    first: list[Event] = []
    rest: list[Event] = []

    async def drop_and_resume() -> None:
        """Reads three events, drops the connection, stays away 3 s, resumes from the last."""
        async with contextlib.aclosing(client.events()) as events:
            async for event in events:
                first.append(event)
                if len(first) == 3:
                    break  # aclosing closes the connection here, mid-call
        await asyncio.sleep(3.0)
        await _read_until_ended(client.events(last_event_id=first[-1].id), rest)

    dropper = asyncio.create_task(drop_and_resume())
    stalled = await _stalled_reader(int(app.api_url.rsplit(":", 1)[1]), client.accesskey)
    async with asyncio.timeout(5):
        while hub.subscribers(customer) < 3:
            await asyncio.sleep(0.05)

    # The interruption comes 4 s after the question, inside the long reply (as in
    # test_conversation's barge-in test); then a second, short turn.
    result = await run_dialogue(
        f"8{flow.id}",
        [Silence(0.5), Say("Tell me about your plans"), Silence(4.0),
         Say("Stop, I want the basic plan"), Silence(5.0)],
    )  # fmt: skip
    async with asyncio.timeout(10):
        await asyncio.gather(reader, dropper)
    dropped_at = [r.created for r in caplog.records if "was dropped" in r.getMessage()]
    stalled.close()
    await client.close()

    assert result.sipp.ok, result.sipp.output + result.sipp.errors
    types = [e.type for e in everything]
    log.info("the call's events: %s", types)
    # In order: started, the lines as said, each turn measured then finished, ended.
    assert types[0] == "call.started"
    assert types[-1] == "call.ended"
    assert types.count("call.started") == types.count("call.ended") == 1
    assert len({e.call_id for e in everything}) == 1
    lines = [e.data for e in everything if e.type == "transcript.added"]
    assert [line["role"] for line in lines] == ["agent", "caller", "agent", "caller", "agent"]
    assert [line["index"] for line in lines] == [0, 1, 2, 3, 4]
    assert "plan" in lines[1]["text"].lower()  # espeak's words, as whisper heard them
    assert lines[2]["text"] == LONG_REPLY
    (corrected,) = [e.data for e in everything if e.type == "transcript.corrected"]
    assert corrected["index"] == 2
    assert corrected["heard"], "the reply was interrupted: what the caller heard of it"
    assert LONG_REPLY.startswith(corrected["heard"].split(" ")[0])
    assert len(corrected["heard"]) < len(LONG_REPLY) / 2
    finished = [e.data for e in everything if e.type == "turn.finished"]
    assert [t["turn"] for t in finished] == [1, 2]
    assert finished[0]["interrupted"] is True
    assert finished[0]["heard"] == corrected["heard"]
    assert all(turn["total_ms"] > 0 for turn in finished)
    assert types.index("turn.updated") < types.index("turn.finished")
    order = [e.type for e in everything if e.type != "turn.updated"]
    assert order == [
        "call.started", "transcript.added", "transcript.added", "transcript.added",
        "transcript.corrected", "turn.finished", "transcript.added", "transcript.added",
        "turn.finished", "call.ended",
    ]  # fmt: skip
    assert [e.at for e in everything] == sorted(e.at for e in everything if e.at)
    # The API says the same once the call is over.
    async with Client(app.api_url, client.accesskey) as api:
        call = await api.calls.get(everything[0].call_id or "")
    assert [t.total_ms for t in call.turns] == [t["total_ms"] for t in finished]

    # The reader that dropped its connection and came back with its last id missed nothing.
    assert [e.id for e in first + rest] == [e.id for e in everything]

    # The reader that never read was cut off during the call, and the call did not wait.
    assert app.metrics.registry.get_sample_value("ari_offload_event_stream_dropped_total") == 1
    assert len(dropped_at) == 1
    started = everything[0].at
    ended = everything[-1].at
    assert started is not None
    assert ended is not None
    assert started.timestamp() < dropped_at[0] < ended.timestamp()
    wire = result.latencies()
    log.info(
        "a reader that never reads was dropped %.1f s into the call; turn latency on the wire "
        "%s ms, the app's totals %s ms",
        dropped_at[0] - started.timestamp(),
        [None if w is None else round(w * 1000) for w in wire],
        [round(t["total_ms"]) for t in finished],
    )
    assert wire[0] is not None
    assert wire[0] < 3.0, f"the first reply came {wire[0]:.2f} s after the caller stopped"
    replies = [b for b in result.agent if b.start >= result.caller[0].end]
    assert "plan" in await heard(speech_models, replies[0])
    async with asyncio.timeout(5):  # every reader is gone: so are their subscriptions
        while hub.subscribers(customer):
            await asyncio.sleep(0.1)
