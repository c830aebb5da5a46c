"""EventSender against real aiohttp receivers on 127.0.0.1, through the egress-guarded session.

Retries here are fast (tens of ms); the outbox's arithmetic is tests/unit/test_call_events.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from ari_offload.agent.client import WebhookClient
from ari_offload.agent.contract import DELIVERY_HEADER, verify
from ari_offload.agent.egress import webhook_session
from ari_offload.agent.event_sender import EventSender
from ari_offload.agent.events import CALL_ENDED, CALL_STARTED, TURN_FINISHED, Outcome, new_event
from ari_offload.config import EventsSettings
from ari_offload.observe.metrics import Metrics
from ari_offload.policy_file import load_policy
from testbed.asterisk import TESTBED_POLICY_FILE

SECRET = "evsec-never-logged-0123"
FAST = EventsSettings(attempts=4, first_retry_s=0.05, max_retry_s=0.2, timeout_s=0.5)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Receiver:
    """A real events receiver: keeps (headers, body) of every request, answers by script."""

    def __init__(self, statuses: list[int] | None = None, delay_s: float = 0.0) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses = list(statuses or [])
        self.delay_s = delay_s
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((dict(request.headers), await request.read()))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return web.Response(status=self.statuses.pop(0) if self.statuses else 204)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.requests]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Receiver], Awaitable[str]]]:
    runners: list[web.AppRunner] = []

    async def start(receiver: Receiver) -> str:
        app = web.Application()
        app.router.add_post("/events", receiver.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}/events?token=q-secret"
        return receiver.url

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def sender_and_metrics() -> AsyncIterator[tuple[EventSender, Metrics]]:
    policy = load_policy(TESTBED_POLICY_FILE)  # allows loopback, as the test bed needs
    session = webhook_session(policy.egress, set())
    metrics = Metrics()
    sender = EventSender(
        WebhookClient(session, FAST.timeout_s, noun="events URL").post_event,
        FAST,
        metrics.event_delivery,
    )
    sender.start()
    yield sender, metrics
    await sender.close()
    await session.close()


def counted(metrics: Metrics, outcome: Outcome) -> float:
    value = metrics.registry.get_sample_value(
        "ari_offload_event_deliveries_total", {"outcome": outcome}
    )
    return value or 0.0


async def test_events_arrive_signed_in_order(
    sender_and_metrics: tuple[EventSender, Metrics], serve: Any
) -> None:
    sender, metrics = sender_and_metrics
    receiver = Receiver()
    url = await serve(receiver)
    events = [new_event(t, "call-1", "agent-1", time.time(), {"i": i})
              for i, t in enumerate((CALL_STARTED, TURN_FINISHED, CALL_ENDED))]  # fmt: skip
    for e in events:
        sender.send(url, SECRET, e)
    async with asyncio.timeout(5):
        await sender.drained()
    assert [b["type"] for b in receiver.bodies] == [CALL_STARTED, TURN_FINISHED, CALL_ENDED]
    assert [b["id"] for b in receiver.bodies] == [e.id for e in events]
    for headers, body in receiver.requests:
        assert verify(body, headers, SECRET, time.time())
        assert headers[DELIVERY_HEADER] == json.loads(body)["id"]
    assert counted(metrics, Outcome.DELIVERED) == 3


async def test_a_failing_receiver_gets_the_same_delivery_again_and_the_order_holds(
    sender_and_metrics: tuple[EventSender, Metrics],
    serve: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sender, metrics = sender_and_metrics
    receiver = Receiver(statuses=[500, 500, 200])
    url = await serve(receiver)
    first = new_event(CALL_STARTED, "call-1", "agent-1", time.time(), {})
    second = new_event(CALL_ENDED, "call-1", "agent-1", time.time(), {})
    caplog.set_level(logging.DEBUG, "ari_offload")
    sender.send(url, SECRET, first)
    sender.send(url, SECRET, second)
    async with asyncio.timeout(5):
        await sender.drained()
    ids = [b["id"] for b in receiver.bodies]
    assert ids == [first.id, first.id, first.id, second.id]
    bodies = [body for _, body in receiver.requests]
    assert bodies[0] == bodies[1] == bodies[2]  # the same bytes, signed anew each time
    assert all(verify(body, h, SECRET, time.time()) for h, body in receiver.requests)
    assert counted(metrics, Outcome.RETRY) == 2
    assert counted(metrics, Outcome.DELIVERED) == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # the first failure; the retry after it is INFO
    assert "attempt 1 of 4" in warnings[0].getMessage()
    assert "events URL http://127.0.0.1:" in warnings[0].getMessage()
    assert "answered HTTP 500" in warnings[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert SECRET not in caplog.text
    assert "q-secret" not in caplog.text  # the URL's query string is never shown


async def test_a_dead_receiver_is_given_up_after_the_bounded_attempts(
    sender_and_metrics: tuple[EventSender, Metrics], caplog: pytest.LogCaptureFixture
) -> None:
    sender, metrics = sender_and_metrics
    e = new_event(CALL_STARTED, "call-1", "agent-1", time.time(), {})
    sender.send("http://127.0.0.1:9/events", None, e)  # the discard port: refused
    async with asyncio.timeout(5):
        await sender.drained()
    assert counted(metrics, Outcome.RETRY) == FAST.attempts - 1
    assert counted(metrics, Outcome.GAVE_UP) == 1
    assert "given up after 4 attempts" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_send_never_waits_and_a_full_queue_drops_with_one_warning(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = Receiver(delay_s=0.3)
    url = await serve(receiver)
    policy = load_policy(TESTBED_POLICY_FILE)
    session = webhook_session(policy.egress, set())
    metrics = Metrics()
    settings = EventsSettings(max_queued=3, timeout_s=2.0, shutdown_grace_s=3.0)
    sender = EventSender(WebhookClient(session, 2.0).post_event, settings, metrics.event_delivery)
    sender.start()
    try:
        started = time.perf_counter()
        for i in range(10):
            sender.send(url, None, new_event(CALL_STARTED, f"call-{i}", "a", time.time(), {}))
        assert time.perf_counter() - started < 0.05  # a slow receiver costs the sender nothing
        async with asyncio.timeout(5):
            await sender.drained()
    finally:
        await sender.close()
        await session.close()
    assert len(receiver.requests) == 3
    assert counted(metrics, Outcome.DROPPED) == 7
    drops = [r for r in caplog.records if "faster than receivers" in r.getMessage()]
    assert len(drops) == 1
    assert drops[0].levelno == logging.WARNING


async def test_close_gives_up_what_is_left_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def never(url: str, body: bytes, delivery: str, secret: str | None) -> None:
        await asyncio.sleep(60)

    sender = EventSender(never, EventsSettings(shutdown_grace_s=0.1))
    sender.start()
    sender.send("http://example.invalid/e", SECRET, new_event(CALL_ENDED, "c", "a", 0.0, {}))
    await asyncio.sleep(0.05)
    await sender.close()  # returns after the grace, the POST cancelled
    assert "1 not delivered at shutdown" in caplog.text
    assert SECRET not in caplog.text
