"""observe/event_stream.py and observe/live_events.py: numbering, tenants, history, resumption,
bounded readers; which call facts become which stream events.

Real HTTP is tests/test_api_events.py; real calls tests/integration/test_event_stream.py.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from ari_offload.config import ApiSettings, StoreSettings
from ari_offload.errors import ValidationError
from ari_offload.observe.event_stream import STREAM_RESET, EventHub, StreamEvent, Subscription
from ari_offload.observe.live_events import LiveEvents
from ari_offload.observe.metrics import Metrics
from ari_offload.store import Direction, Store
from ari_offload.voice.turns import TranscriptEntry, TurnTiming
from tests.unit.test_call_events_observer import make_call


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def hub_of(clock: Clock | None = None, metrics: Metrics | None = None, **limits: Any) -> EventHub:
    return EventHub(ApiSettings(**limits), metrics, clock or Clock())


def said(hub: EventHub, customer: str, n: int, call: str = "call-1") -> list[StreamEvent]:
    return [
        hub.publish(customer, "transcript.added", call, {"index": i, "text": f"line {i}"})
        for i in range(n)
    ]


async def drain(subscription: Subscription) -> list[StreamEvent]:
    out = []
    while len(subscription):
        event = await subscription.next()
        assert event is not None
        out.append(event)
    return out


async def test_each_tenant_counts_its_own_events_and_sees_only_them() -> None:
    hub = hub_of()
    alice, bob = hub.subscribe("alice"), hub.subscribe("bob")
    a = said(hub, "alice", 3)
    b = said(hub, "bob", 1, call="call-2")

    assert [e.id for e in a] == [f"{hub.stream}-1", f"{hub.stream}-2", f"{hub.stream}-3"]
    assert b[0].id == f"{hub.stream}-1"  # bob learns nothing of alice's traffic from his ids
    assert await drain(alice) == a
    assert await drain(bob) == b


async def test_the_wire_frame_is_one_sse_event_whatever_the_text() -> None:
    hub = hub_of()
    event = hub.publish("alice", "transcript.added", "call-1", {"text": "two\nlines\r\n\n: x"})
    frame = event.wire.decode()

    assert frame.endswith("\n\n")
    assert frame.count("\n\n") == 1  # a newline in a transcript cannot end the frame early
    lines = frame.rstrip("\n").split("\n")
    assert lines[:2] == [f"id: {event.id}", "event: transcript.added"]
    assert json.loads(lines[2].removeprefix("data: ")) == {
        "id": event.id, "type": "transcript.added", "call_id": "call-1",
        "at": "1970-01-01T00:16:40+00:00", "data": {"text": "two\nlines\r\n\n: x"},
    }  # fmt: skip


async def test_a_reader_back_with_its_last_id_gets_exactly_what_it_missed() -> None:
    hub = hub_of()
    events = said(hub, "alice", 5)

    resumed = hub.subscribe("alice", last_event_id=events[1].id)
    assert await drain(resumed) == events[2:]
    caught_up = hub.subscribe("alice", last_event_id=events[-1].id)
    assert await drain(caught_up) == []
    more = said(hub, "alice", 1)
    assert await drain(caught_up) == more


async def test_a_gap_the_history_no_longer_holds_starts_with_a_reset() -> None:
    hub = hub_of(stream_history=3)
    events = said(hub, "alice", 6)  # 1-3 fell out of the history

    resumed = await drain(hub.subscribe("alice", last_event_id=events[1].id))
    assert resumed[0].type == STREAM_RESET
    assert resumed[0].id == events[2].id  # a reconnect from the reset resumes after it
    assert resumed[1:] == events[3:]
    # From the event just before the oldest one kept: nothing was lost, no reset.
    assert await drain(hub.subscribe("alice", last_event_id=events[2].id)) == events[3:]


async def test_old_events_leave_the_history() -> None:
    clock = Clock()
    hub = hub_of(clock, stream_history_s=60.0)
    old = said(hub, "alice", 2)
    clock.now += 61
    new = said(hub, "alice", 1)

    resumed = await drain(hub.subscribe("alice", last_event_id=old[0].id))
    assert [e.type for e in resumed] == [STREAM_RESET, "transcript.added"]
    assert resumed[1:] == new


async def test_an_id_of_another_run_or_one_never_issued_gets_a_reset() -> None:
    hub = hub_of()
    events = said(hub, "alice", 2)

    for stale in ("0123abcd-1", f"{hub.stream}-99"):
        resumed = await drain(hub.subscribe("alice", last_event_id=stale))
        assert resumed[0].type == STREAM_RESET, stale
        assert "restarted" in resumed[0].data["reason"] or "history" in resumed[0].data["reason"]
        assert resumed[1:] == events
    for bad in ("nonsense", "x-", "-3", "a-1-" + "9" * 80):
        with pytest.raises(ValidationError) as refused:
            hub.subscribe("alice", last_event_id=bad)
        assert refused.value.field == "last_event_id"


async def test_a_reader_that_falls_behind_is_dropped_and_costs_nothing_more() -> None:
    metrics = Metrics()
    hub = hub_of(metrics=metrics, stream_buffer=4)
    slow, fast = hub.subscribe("alice"), hub.subscribe("alice")
    cut: list[str] = []
    slow.on_drop = lambda: cut.append("cut")
    assert metrics.registry.get_sample_value("ari_offload_event_stream_subscribers") == 2

    for _ in range(8):
        (event,) = said(hub, "alice", 1)
        assert await fast.next() == event  # the reader that reads gets everything

    assert slow.dropped
    assert slow.closed
    assert cut == ["cut"]  # its connection is cut at once
    assert len(slow) == 0  # its queue is freed
    assert await slow.next() is None
    assert metrics.registry.get_sample_value("ari_offload_event_stream_dropped_total") == 1
    assert metrics.registry.get_sample_value("ari_offload_event_stream_subscribers") == 1


async def test_a_reader_too_many_bytes_behind_is_dropped_its_socket_counted() -> None:
    hub = hub_of(stream_backlog_bytes=2000)
    reader = hub.subscribe("alice")
    in_socket = [0]
    reader.unacknowledged = lambda: in_socket[0]
    (first,) = said(hub, "alice", 1)
    assert await reader.next() == first  # written out: only its socket may hold it now
    size = len(first.wire)  # the events here are all this long
    in_socket[0] = 2000 - 2 * size + 1  # the reader's end acknowledges nothing more
    said(hub, "alice", 1)
    assert not reader.dropped  # its socket's bytes and one queued event: within 2000
    said(hub, "alice", 1)
    assert reader.dropped


async def test_close_ends_every_reader_and_full_counts_open_ones() -> None:
    hub = hub_of(stream_subscribers=2)
    first, second = hub.subscribe("alice"), hub.subscribe("alice")
    assert hub.full("alice")
    assert not hub.full("bob")
    waiting = asyncio.ensure_future(first.next())
    await asyncio.sleep(0)

    hub.close()
    assert await asyncio.wait_for(waiting, 1) is None
    assert await second.next() is None
    assert not hub.full("alice")


async def test_publish_refuses_a_type_it_does_not_define() -> None:
    hub = hub_of()
    for wrong in ("call.answered", STREAM_RESET):
        with pytest.raises(ValueError, match="not a tenant event type"):
            hub.publish("alice", wrong, None, {})


# --- live_events.py: call facts as stream events -------------------------------------------


async def test_a_call_streams_in_order_with_line_indexes_and_heard(tmp_path: Path) -> None:
    store = await Store.open(StoreSettings(data_dir=tmp_path))
    hub = hub_of()
    owners = {"call-1": "alice"}
    live = LiveEvents(hub, owners.get, store, clock=lambda: 1010.0)
    reader = hub.subscribe("alice")
    call = make_call()
    try:
        await live.call_started(call)
        welcome = TranscriptEntry("agent", "Hello!", at=1001.0)
        caller = TranscriptEntry("caller", "Tell me about your plans", at=1002.0)
        reply = TranscriptEntry("agent", "The basic plan is free. The standard one", at=1003.0)
        for entry in (welcome, caller):
            live.transcript_added(call, entry)
        timing = TurnTiming(1, endpoint_ms=400.0, stt_ms=50.0)
        live.turn_updated(call, timing)
        live.transcript_added(call, reply)
        cut = TranscriptEntry(reply.role, reply.text, reply.at, heard="The basic plan is free.")
        live.transcript_corrected(call, reply, cut)
        timing.webhook_ms, timing.tts_first_audio_ms, timing.total_ms = 5.0, 80.0, 535.0
        timing.interrupted = True
        live.turn_finished(call, timing)
        call.hangup_reason = "caller"
        await live.call_ended(call)
        # A call no tenant owns (a built-in flow) is not streamed at all.
        other = make_call("call-2")
        await live.call_started(other)
        live.transcript_added(other, TranscriptEntry("agent", "echo"))
    finally:
        await store.close()

    events = await drain(reader)
    assert [e.type for e in events] == [
        "call.started", "transcript.added", "transcript.added", "turn.updated",
        "transcript.added", "transcript.corrected", "turn.finished", "call.ended",
    ]  # fmt: skip
    assert {e.call_id for e in events} == {"call-1"}
    assert events[0].data == {
        "direction": "in", "caller": "1001", "started_at": "1970-01-01T00:16:40+00:00",
        "answered_at": "1970-01-01T00:16:40.500000+00:00",
    }  # fmt: skip
    lines = [e.data for e in events if e.type.startswith("transcript.")]
    assert [(line["index"], line["role"], line["heard"]) for line in lines] == [
        (0, "agent", None), (1, "caller", None), (2, "agent", None),
        (2, "agent", "The basic plan is free."),
    ]  # fmt: skip
    finished = events[6].data
    assert (finished["turn"], finished["total_ms"], finished["interrupted"]) == (1, 535.0, True)
    assert finished["caller"] == caller.text
    assert finished["heard"] == "The basic plan is free."
    assert events[-1].data == {"reason": "caller", "duration_s": 10.0}


async def test_an_outbound_call_never_answered_is_told_to_its_tenant(tmp_path: Path) -> None:
    store = await Store.open(StoreSettings(data_dir=tmp_path))
    hub = hub_of()
    try:
        customer = await store.customers.create("alice", "password-123")
        record = await store.calls.create(
            customer.id, direction=Direction.OUT, flow_id=None, destination="+15550100"
        )
        reader = hub.subscribe(customer.id)
        live = LiveEvents(hub, lambda call_id: None, store)
        await live.outbound_failed(record.id, "busy")
        await live.outbound_failed("not-a-call-of-anyone", "busy")
    finally:
        await store.close()

    (failed,) = await drain(reader)
    assert (failed.type, failed.call_id, failed.data) == (
        "call.failed",
        record.id,
        {"reason": "busy"},
    )
