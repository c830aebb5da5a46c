"""The call-event outbox (agent/events.py): order per call, retry with backoff, bounds.

Time is a number passed in: no loop, no sleep.
"""

from __future__ import annotations

import json

import pytest

from ari_offload.agent.events import (
    CALL_ENDED,
    CALL_STARTED,
    CallEvent,
    Delivery,
    Outbox,
    Outcome,
    RetryPolicy,
    new_event,
)

URL = "http://127.0.0.1:9/events"


def event(type_: str = CALL_STARTED, call: str = "c1", agent: str = "a1") -> CallEvent:
    return new_event(type_, call, agent, 1_700_000_000.5, {"n": 1})


def delivery(type_: str = CALL_STARTED, call: str = "c1", agent: str = "a1") -> Delivery:
    return Delivery(event(type_, call, agent), URL, "s" * 16)


def test_the_payload_has_the_documented_shape() -> None:
    e = event(CALL_ENDED)
    body = json.loads(e.to_json())
    assert list(body) == ["id", "type", "call_id", "agent_id", "at", "data"]
    assert body["type"] == "call.ended"
    assert body["at"] == "2023-11-14T22:13:20.500000+00:00"
    assert body["data"] == {"n": 1}
    assert e.to_json() == e.to_json()  # a retry sends the very same bytes
    assert event().id != event().id
    with pytest.raises(ValueError, match=r"unknown event type 'call\.exploded'"):
        new_event("call.exploded", "c", "a", 0.0, {})


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(attempts=5, first_retry_s=4.0, max_retry_s=20.0)
    assert [policy.delay_after(n) for n in range(1, 6)] == [4.0, 8.0, 16.0, 20.0, 20.0]
    with pytest.raises(ValueError, match="attempts must be at least 1"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match="retry delays must satisfy"):
        RetryPolicy(first_retry_s=5.0, max_retry_s=1.0)


def test_a_failing_delivery_is_retried_with_backoff_then_given_up() -> None:
    box = Outbox(RetryPolicy(attempts=3, first_retry_s=1.0, max_retry_s=10.0))
    d = delivery()
    assert box.add(d, now=100.0)
    assert box.due(100.0) == [d]
    assert box.due(100.0) == []  # in flight: not handed out twice
    assert box.failed(d, now=100.5) is Outcome.RETRY
    assert box.next_due() == 101.5
    assert box.due(101.4) == []
    assert box.due(101.5) == [d]
    assert box.failed(d, now=102.0) is Outcome.RETRY
    assert box.next_due() == 104.0  # 2 s after the second failure
    assert box.due(104.0) == [d]
    assert d.attempts == 3
    assert box.failed(d, now=104.2) is Outcome.GAVE_UP
    assert len(box) == 0
    assert box.next_due() is None


def test_events_of_one_call_go_in_order_one_at_a_time() -> None:
    box = Outbox(RetryPolicy(attempts=5, first_retry_s=2.0, max_retry_s=30.0))
    first, second, third = delivery(), delivery("call.answered"), delivery(CALL_ENDED)
    for d in (first, second, third):
        assert box.add(d, now=0.0)
    assert box.due(0.0) == [first]  # the rest of the call waits behind its head
    assert box.failed(first, now=0.1) is Outcome.RETRY
    assert box.due(1.0) == []  # the head waits its backoff; nobody overtakes it
    assert box.due(2.1) == [first]
    assert box.delivered(first) is Outcome.DELIVERED
    assert box.due(2.2) == [second]  # the next one is due at once
    box.delivered(second)
    assert box.due(2.3) == [third]
    box.delivered(third)
    assert len(box) == 0


def test_a_given_up_head_lets_the_rest_of_its_call_go() -> None:
    box = Outbox(RetryPolicy(attempts=1))
    first, second = delivery(), delivery(CALL_ENDED)
    box.add(first, 0.0)
    box.add(second, 0.0)
    box.due(0.0)
    assert box.failed(first, 0.5) is Outcome.GAVE_UP
    assert box.due(0.5) == [second]


def test_calls_and_agents_do_not_wait_for_each_other() -> None:
    box = Outbox(RetryPolicy(first_retry_s=10.0, max_retry_s=10.0))
    slow, other_call, other_agent = delivery(), delivery(call="c2"), delivery(agent="a2")
    for d in (slow, other_call, other_agent):
        box.add(d, 0.0)
    assert box.due(0.0) == [slow, other_call, other_agent]
    box.failed(slow, 0.0)
    box.delivered(other_call)
    later = delivery(CALL_ENDED, call="c2")
    box.add(later, 1.0)
    assert box.due(1.0) == [later]  # c2 goes on while c1 waits 10 s


def test_the_outbox_is_bounded() -> None:
    box = Outbox(max_queued=2)
    assert box.add(delivery(call="c1"), 0.0)
    assert box.add(delivery(call="c2"), 0.0)
    assert not box.add(delivery(call="c3"), 0.0)  # full: the caller counts the drop
    assert len(box) == 2
    (d, _) = box.due(0.0)
    box.delivered(d)
    assert box.add(delivery(call="c3"), 0.0)  # room again


def test_at_most_max_in_flight_at_once() -> None:
    box = Outbox(max_in_flight=2)
    ds = [delivery(call=f"c{i}") for i in range(3)]
    for d in ds:
        box.add(d, 0.0)
    assert box.due(0.0) == ds[:2]
    assert box.next_due() is None  # no room: the next finished attempt makes some
    assert box.due(0.0) == []
    box.delivered(ds[0])
    assert box.next_due() == 0.0
    assert box.due(0.0) == [ds[2]]


def test_the_due_head_that_waited_longest_goes_first() -> None:
    box = Outbox(RetryPolicy(first_retry_s=1.0, max_retry_s=1.0), max_in_flight=1)
    a, b = delivery(call="a"), delivery(call="b")
    box.add(a, 0.0)
    box.add(b, 0.5)
    assert box.due(5.0) == [a]
    box.failed(a, 5.0)  # due again at 6.0; b has been due since 0.5
    assert box.due(7.0) == [b]


def test_only_the_head_in_flight_can_finish() -> None:
    box = Outbox()
    first, second = delivery(), delivery(CALL_ENDED)
    box.add(first, 0.0)
    box.add(second, 0.0)
    with pytest.raises(ValueError, match="only a lane's head"):
        box.delivered(second)


def test_the_secret_is_not_in_the_repr() -> None:
    assert "s" * 16 not in repr(delivery())
