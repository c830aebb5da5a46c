"""Streamed webhook replies on real calls: the caller hears the first clause while the agent
is still writing, and a barge-in closes the agent's stream with ``heard`` truthful.

The agents here stream like an LLM server that is slow after its first words: NDJSON (one
``{"text": ...}`` per line) and SSE in OpenAI's chat-completion shape. What the caller heard
is transcribed from the RTP capture.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from ari_offload.app import App
from ari_offload.sdk.client import Client
from ari_offload.speech.models import SpeechModels
from testbed.dialogue import Say, Silence, run_dialogue
from tests.integration.helpers import heard, sounds_like

pytestmark = [
    pytest.mark.integration,
    pytest.mark.models,
    pytest.mark.usefixtures("loop_must_not_block"),
]

FIRST = "Let me look that up for you, "
REST = "your order ships tomorrow. Anything else?"
LATER_S = 2.5  # the agent "thinks" this long between its first words and the rest


@dataclass
class SlowAgent:
    """An agent that streams FIRST at once, then REST after LATER_S (or a short answer to
    any later turn); it notes what it was sent and whether a stream was cut."""

    url: str = ""
    later_s: float = LATER_S
    requests: list[dict[str, object]] = field(default_factory=list)
    finished_at: list[float] = field(default_factory=list)  # monotonic, per full stream
    cut: asyncio.Event = field(default_factory=asyncio.Event)

    async def hook(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        sse = request.query.get("format") == "sse"
        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream" if sse else "application/x-ndjson"}
        )
        await resp.prepare(request)
        pieces = [FIRST, REST] if body["turn"] == 1 else ["Okay."]
        try:
            for index, piece in enumerate(pieces):
                if index:
                    await asyncio.sleep(self.later_s)
                await resp.write(_encode(piece, sse))
            await resp.write(b"data: [DONE]\n\n" if sse else b'{"done": true}\n')
            self.finished_at.append(time.monotonic())
        except ConnectionResetError:  # the caller cut the reply: the app closed the stream
            self.cut.set()
        return resp


def _encode(piece: str, sse: bool) -> bytes:
    if sse:
        chunk = {"choices": [{"delta": {"content": piece}, "finish_reason": None}]}
        return f"data: {json.dumps(chunk)}\n\n".encode()
    return json.dumps({"text": piece}).encode() + b"\n"


@pytest.fixture
async def slow_agent() -> AsyncIterator[SlowAgent]:
    agent = SlowAgent()
    app = web.Application()
    app.router.add_post("/hook", agent.hook)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    agent.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    yield agent
    await runner.cleanup()


@pytest.mark.parametrize("fmt", ["ndjson", "sse"])
async def test_the_caller_hears_the_start_while_the_agent_still_writes(
    app: App, slow_agent: SlowAgent, speech_models: SpeechModels, fmt: str
) -> None:
    async with await Client.signup(app.api_url + "/v1.0", f"s-{fmt}", "password1") as client:
        agent = await client.agents.create(name="slow", webhook=f"{slow_agent.url}?format={fmt}")
        flow = await client.flows.create("slow", [{"type": "ai_talk", "agent_id": agent.id}])
        result = await run_dialogue(
            f"8{flow.id}", [Silence(1.0), Say("Where is my order"), Silence(9.0)]
        )
        detail = await client.calls.get((await client.calls.list())[0].id)

    assert result.sipp.ok, result.sipp.output + result.sipp.errors
    assert len(slow_agent.requests) == 1
    reply = [b for b in result.agent if b.start >= result.caller[0].end]
    assert reply, "the caller heard no reply"
    # The first words played before the agent wrote the rest: a gap of about LATER_S
    # separates them on the wire, and the turn's webhook time is the time to the first text.
    first_heard = await heard(speech_models, reply[0])
    assert sounds_like(first_heard, FIRST), first_heard
    assert "tomorrow" not in first_heard
    everything = " ".join([await heard(speech_models, b) for b in reply])
    assert sounds_like(everything, REST), everything
    assert reply[-1].start - reply[0].start > LATER_S - 0.5
    turn = detail.turns[0]
    assert turn.webhook_ms is not None
    assert turn.webhook_ms < 1000  # the first text, not the whole 2.5 s stream
    assert turn.webhook_error is None
    agent_lines = [line for line in detail.transcript if line.role == "agent"]
    # One line, the whole reply as streamed, heard to its end (no "[heard: ...]" suffix).
    assert [line.text for line in agent_lines] == [(FIRST + REST).strip()]


async def test_barge_in_closes_the_agents_stream_and_heard_stays_truthful(
    app: App, slow_agent: SlowAgent
) -> None:
    # The stream stays open while the barge-in's words are checked (a cough resumes the
    # reply, RESUME_WITHIN_S at most): the agent here is still writing when that is over.
    slow_agent.later_s = 6.0
    async with await Client.signup(app.api_url + "/v1.0", "s-cut", "password1") as client:
        agent = await client.agents.create(name="slow", webhook=slow_agent.url)
        flow = await client.flows.create("cut", [{"type": "ai_talk", "agent_id": agent.id}])
        # The caller talks over the first words, before the agent has sent the rest.
        result = await run_dialogue(
            f"8{flow.id}",
            [Silence(1.0), Say("Where is my order"), Silence(2.1), Say("Wait, stop"), Silence(5)],
        )
        detail = await client.calls.get((await client.calls.list())[0].id)

    assert result.sipp.ok, result.sipp.output + result.sipp.errors
    async with asyncio.timeout(5):
        await slow_agent.cut.wait()  # the stream was closed: the agent can stop its LLM
    assert len(slow_agent.finished_at) <= 1  # turn 2's only: turn 1's never finished
    assert [r["turn"] for r in slow_agent.requests] == [1, 2]
    told = slow_agent.requests[1]["heard"]
    assert isinstance(told, str)
    assert FIRST.strip().startswith(told.strip()) or told == ""
    agent_lines = [line for line in detail.transcript if line.role == "agent"]
    # What came before the cut, nothing more, and what of it the caller heard.
    assert agent_lines[0].text == f"{FIRST.strip()} [heard: {told}]"
