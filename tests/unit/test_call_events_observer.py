"""observe/call_events.py: which call facts become which events, for which agents.

The sender's POST is a recording fake here; real HTTP is tests/test_call_event_sender.py and,
with real calls, tests/integration/test_call_events.py.
"""

from __future__ import annotations

import json
from typing import Any, cast

from ari_offload.agent.event_sender import EventSender
from ari_offload.ari.call import ActiveCall
from ari_offload.ari.events import Channel
from ari_offload.ari.rest import AriRest
from ari_offload.observe.call_events import CallEvents
from ari_offload.voice.conversation import AgentBinding
from ari_offload.voice.turns import TranscriptEntry, TurnTiming
from tests.unit.fake_media import FakeMediaPort

EVENTS = "http://127.0.0.1:9/events"
AGENT = AgentBinding("agent-1", "http://127.0.0.1:9/hook", "s" * 16, events_url=EVENTS)


class Posted:
    def __init__(self) -> None:
        self.bodies: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, url: str, body: bytes, delivery: str, secret: str | None) -> None:
        self.bodies.append((url, json.loads(body)))


def make_call(call_id: str = "call-1") -> ActiveCall:
    channel = Channel("chan-1", "PJSIP/test-1", "Up", caller_number="1001")
    call = ActiveCall(call_id, channel, {}, "in", cast(AriRest, None), FakeMediaPort())
    call.started_at, call.answered_at = 1000.0, 1000.5
    return call


async def run(events: CallEvents, sender: EventSender) -> None:
    sender.start()
    await sender.drained()
    await sender.close()


async def test_an_agent_with_an_events_url_hears_the_whole_call_in_order() -> None:
    posted = Posted()
    sender = EventSender(posted)
    events = CallEvents(sender, clock=lambda: 1010.0)
    call = make_call()
    events.agent_joined(call, AGENT)
    events.agent_joined(call, AGENT)  # a second ai_talk with the same agent: told once
    caller = TranscriptEntry("caller", "I need to reset my password", at=1002.0)
    reply = TranscriptEntry("agent", "Sure! Can you confirm your email address?", at=1003.0)
    events.transcript_added(call, caller)
    events.transcript_added(call, reply)
    cut = TranscriptEntry(reply.role, reply.text, reply.at, heard="Sure!")
    events.transcript_corrected(call, reply, cut)
    timing = TurnTiming(1, endpoint_ms=400.0, stt_ms=50.0, webhook_ms=10.0,
                        tts_first_audio_ms=90.0, total_ms=550.0, interrupted=True)  # fmt: skip
    events.turn_finished(call, timing)
    call.hangup_reason = "caller"
    await events.call_ended(call)
    await run(events, sender)

    assert {url for url, _ in posted.bodies} == {EVENTS}
    bodies = [body for _, body in posted.bodies]
    assert [b["type"] for b in bodies] == [
        "call.started", "call.answered", "turn.finished", "call.ended"
    ]  # fmt: skip
    assert bodies[0]["at"] == "1970-01-01T00:16:40+00:00"  # the call's own start
    assert bodies[0]["data"] == {"direction": "in", "caller": "1001"}
    assert bodies[1]["at"] == "1970-01-01T00:16:40.500000+00:00"
    turn = bodies[2]["data"]
    assert (turn["turn"], turn["total_ms"], turn["interrupted"]) == (1, 550.0, True)
    assert (turn["caller"], turn["heard"]) == (caller.text, "Sure!")
    ended = bodies[3]["data"]
    assert ended["reason"] == "caller"
    assert ended["duration_s"] == 10.0
    assert [(e["role"], e["heard"]) for e in ended["transcript"]] == [
        ("caller", None), ("agent", "Sure!")
    ]  # fmt: skip
    assert ended["turns"] == [json.loads(json.dumps(timing.as_dict()))]
    assert {b["call_id"] for b in bodies} == {"call-1"}
    assert {b["agent_id"] for b in bodies} == {"agent-1"}


async def test_calls_without_an_events_agent_send_nothing() -> None:
    posted = Posted()
    sender = EventSender(posted)
    events = CallEvents(sender)
    quiet, other = make_call("quiet"), make_call("other")
    events.agent_joined(quiet, AgentBinding("a", "http://127.0.0.1:9/hook"))  # no events URL
    events.transcript_added(other, TranscriptEntry("caller", "hello"))
    events.turn_finished(other, TurnTiming(1))
    await events.call_ended(quiet)
    await events.call_ended(other)
    await run(events, sender)
    assert posted.bodies == []


async def test_two_agents_on_one_call_each_hear_it() -> None:
    posted = Posted()
    sender = EventSender(posted)
    events = CallEvents(sender)
    call = make_call()
    second = AgentBinding("agent-2", "http://127.0.0.1:9/hook2", events_url=EVENTS + "2")
    events.agent_joined(call, AGENT)
    events.agent_joined(call, second)
    await events.call_ended(call)
    await run(events, sender)
    by_agent: dict[str, list[str]] = {}
    for url, body in posted.bodies:
        by_agent.setdefault(body["agent_id"], []).append(body["type"])
        assert url == (EVENTS if body["agent_id"] == "agent-1" else EVENTS + "2")
    assert by_agent == {
        "agent-1": ["call.started", "call.answered", "call.ended"],
        "agent-2": ["call.started", "call.answered", "call.ended"],
    }
