"""Call events, end to end: the whole app (API, store, controller, speech), a real SIPp caller
through the test-bed Asterisk, and a real aiohttp events receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from ari_offload.agent.contract import DELIVERY_HEADER, WebhookRequest, verify
from ari_offload.app import App
from ari_offload.config import ApiSettings, EventsSettings, PolicySettings, Settings, StoreSettings
from ari_offload.sdk.client import Client
from ari_offload.speech.models import SpeechModels
from testbed.asterisk import TESTBED_ARI, TESTBED_POLICY_FILE, Testbed
from testbed.dialogue import DialogueResult, Say, Silence, run_dialogue
from tests.integration.conftest import free_port
from tests.integration.helpers import heard

pytestmark = [pytest.mark.integration, pytest.mark.models]

SECRET = "events-secret-0123456789"
TYPES = ["call.started", "call.answered", "turn.finished", "call.ended"]
# Fast retries, so the test waits well under a second for them (defaults: 4 s, 8 s, ...).
EVENTS = EventsSettings(attempts=5, first_retry_s=0.2, max_retry_s=1.0, timeout_s=2.0)


@pytest.fixture
async def events_app(
    testbed: Testbed, speech_models: SpeechModels, tmp_path: Path
) -> AsyncIterator[App]:
    settings = Settings(
        ari=TESTBED_ARI,
        api=ApiSettings(port=free_port()),
        store=StoreSettings(data_dir=tmp_path),
        policy=PolicySettings(file=TESTBED_POLICY_FILE),
        events=EVENTS,
    )
    running = await App.start(settings, models=speech_models)
    await running.service.wait_connected()
    yield running
    await running.stop()


class Receiver:
    """An events receiver: every request kept with the status it got; `answer` decides it."""

    def __init__(self, answer: Callable[[int], Any] | None = None) -> None:
        self.requests: list[tuple[dict[str, str], bytes, int]] = []
        self.answer = answer or (lambda n: 200)
        self.ended = asyncio.Event()
        self.release = asyncio.Event()  # for a receiver that hangs: set at teardown

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        status = self.answer(len(self.requests))
        if status is None:  # hang: a dead-slow receiver
            self.requests.append((dict(request.headers), body, 0))
            await self.release.wait()
            return web.Response(status=200)
        self.requests.append((dict(request.headers), body, status))
        if status == 200 and json.loads(body)["type"] == "call.ended":
            self.ended.set()
        return web.Response(status=status)

    def delivered(self) -> list[dict[str, Any]]:
        """The events answered 200, in arrival order."""
        return [json.loads(b) for _, b, status in self.requests if status == 200]


@pytest.fixture
async def receiver_url() -> AsyncIterator[Callable[[Receiver], Any]]:
    runners: list[tuple[web.AppRunner, Receiver]] = []

    async def serve(receiver: Receiver) -> str:
        app = web.Application()
        app.router.add_post("/events", receiver.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append((runner, receiver))
        return f"http://127.0.0.1:{runner.addresses[0][1]}/events"

    yield serve
    for runner, receiver in runners:
        receiver.release.set()
        await runner.cleanup()


async def _call_with_events(
    app: App, webhook: str, events_url: str, name: str
) -> tuple[DialogueResult, str]:
    """An agent with the events URL, a flow talking to it, and one SIPp call to the flow."""
    async with await Client.signup(app.api_url, name, "password-123") as client:
        agent = await client.agents.create(
            "support", webhook=webhook, secret=SECRET, events_url=events_url
        )
        assert agent.events_url == events_url
        flow = await client.flows.create(
            "support-flow", [{"type": "ai_talk", "agent_id": agent.id, "welcome_message": "Hi!"}]
        )
        result = await run_dialogue(
            f"8{flow.id}", [Silence(1.5), Say("I need to reset my password"), Silence(5.0)]
        )
    return result, agent.id


def _check_signed(receiver: Receiver) -> None:
    for headers, body, _ in receiver.requests:
        assert verify(body, headers, SECRET, time.time()), "every attempt is signed"
        assert headers[DELIVERY_HEADER] == json.loads(body)["id"]


async def test_the_events_url_hears_the_call_in_order_signed(
    events_app: App,
    sample_agent: tuple[str, list[WebhookRequest]],
    receiver_url: Any,
    speech_models: SpeechModels,
) -> None:
    receiver = Receiver()
    url = await receiver_url(receiver)
    result, agent_id = await _call_with_events(events_app, sample_agent[0], url, "events-ok")

    assert result.sipp.ok, result.sipp.output + result.sipp.errors
    async with asyncio.timeout(10):
        await receiver.ended.wait()
    events = receiver.delivered()
    assert [e["type"] for e in events] == TYPES
    assert len({e["call_id"] for e in events}) == 1
    assert {e["agent_id"] for e in events} == {agent_id}
    assert len({e["id"] for e in events}) == 4
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    _check_signed(receiver)
    started, answered, turn, ended = (e["data"] for e in events)
    assert started["direction"] == "in"
    assert answered == {}
    assert turn["turn"] == 1
    assert "password" in turn["caller"].lower()
    assert "email address" in turn["agent"].lower()
    assert turn["total_ms"] > 0
    transcript = ended["transcript"]
    assert [line["role"] for line in transcript] == ["agent", "caller", "agent"]
    assert "password" in transcript[1]["text"].lower()  # the caller's words
    assert [t["turn"] for t in ended["turns"]] == [1]
    assert ended["turns"][0]["total_ms"] == turn["total_ms"]
    assert ended["duration_s"] > 5
    # The call itself: the reply was heard.
    replies = [b for b in result.agent if b.start >= result.caller[0].end]
    assert replies, "no reply after the caller's words"
    assert "email" in await heard(speech_models, replies[0])


async def test_a_receiver_failing_twice_gets_the_same_delivery_and_the_call_goes_on(
    events_app: App,
    sample_agent: tuple[str, list[WebhookRequest]],
    receiver_url: Any,
    speech_models: SpeechModels,
) -> None:
    receiver = Receiver(lambda n: 500 if n < 2 else 200)
    url = await receiver_url(receiver)
    result, _ = await _call_with_events(events_app, sample_agent[0], url, "events-retry")

    assert result.sipp.ok, result.sipp.output + result.sipp.errors
    async with asyncio.timeout(10):
        await receiver.ended.wait()
    statuses = [(json.loads(b)["type"], s) for _, b, s in receiver.requests]
    assert statuses[:3] == [("call.started", 500), ("call.started", 500), ("call.started", 200)]
    ids = [json.loads(b)["id"] for _, b, _ in receiver.requests]
    assert ids[0] == ids[1] == ids[2], "a retry carries the same delivery id"
    assert [e["type"] for e in receiver.delivered()] == TYPES  # each once, in order
    _check_signed(receiver)
    (sipp_turn,) = sample_agent[1]
    assert "password" in sipp_turn.text.lower()
    replies = [b for b in result.agent if b.start >= result.caller[0].end]
    assert replies, "no reply after the caller's words"
    assert "email" in await heard(speech_models, replies[0])
    metrics = events_app.metrics.registry
    sample = metrics.get_sample_value
    assert sample("ari_offload_event_deliveries_total", {"outcome": "retry"}) == 2
    assert sample("ari_offload_event_deliveries_total", {"outcome": "delivered"}) == 4


async def test_a_receiver_that_never_answers_does_not_delay_the_turn(
    events_app: App,
    sample_agent: tuple[str, list[WebhookRequest]],
    receiver_url: Any,
    speech_models: SpeechModels,
) -> None:
    receiver = Receiver(lambda n: None)  # takes the request and never answers
    url = await receiver_url(receiver)
    result, _ = await _call_with_events(events_app, sample_agent[0], url, "events-dead")

    assert result.sipp.ok, result.sipp.output + result.sipp.errors
    assert receiver.requests, "the receiver was asked"
    replies = [b for b in result.agent if b.start >= result.caller[0].end]
    assert replies, "no reply after the caller's words"
    assert "email" in await heard(speech_models, replies[0])
    gap = replies[0].start - result.caller[0].end
    assert gap < 3.0, f"the reply came {gap:.2f} s after the caller stopped"
