"""An assistant on live calls: the MCP server (a real stdio subprocess, the official MCP client
session) against the whole app, with real SIPp calls through the test-bed Asterisk.

say_and_listen returns what a real caller said; send_dtmf reaches the far end of an outbound
call as RFC 4733 events; transfer_call moves a caller to the policy's ``desk`` (a SIPp UAS);
make_call with a message has the answering side hear that message.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession
from mcp.types import TextContent

from ari_offload.agent.contract import WebhookRequest
from ari_offload.app import App
from ari_offload.media.g711 import ULAW
from ari_offload.sdk.client import Client
from ari_offload.speech.models import SpeechModels
from testbed.audio import CACHE_DIR
from testbed.capture import RtpCapture, payload_bytes
from testbed.dialogue import Say, Silence, bursts, run_dialogue, script_audio
from testbed.dtmf import keys_in
from testbed.sipp import SippAnswerer, SippCall
from tests.integration.helpers import heard, sounds_like, words
from tests.mcp_support import mcp_session, tool_result

pytestmark = [
    pytest.mark.integration,
    pytest.mark.models,
    pytest.mark.usefixtures("loop_must_not_block"),
]

QUESTION = "What can I do for you today?"
ANSWER = "I need to reset my password."  # words whisper tiny.en hears in espeak's voice
CALLER_SPEECH = "Hello, is this the front desk speaking?"


async def _live_call(session: ClientSession, timeout_s: float = 15.0) -> dict[str, Any]:
    """The one call in progress, once it is active (list_active_calls, as an assistant would)."""
    async with asyncio.timeout(timeout_s):
        while True:
            calls = tool_result(await session.call_tool("list_active_calls", {}))["calls"]
            live = [c for c in calls if c["status"] == "active"]
            if live:
                (call,) = live
                return dict(call)
            await asyncio.sleep(0.2)


def _error(result: Any) -> str:
    assert result.is_error, result.content
    return " ".join(c.text for c in result.content if isinstance(c, TextContent))


async def test_say_and_listen_returns_what_a_real_caller_said(
    app: App,
    sample_agent: tuple[str, list[WebhookRequest]],
    speech_models: SpeechModels,
    tmp_path: Path,
) -> None:
    url, _ = sample_agent
    async with await Client.signup(app.api_url, "assistant-1", "password1") as client:
        agent = await client.agents.create("desk", webhook=url)
        flow = await client.flows.create("listen", [{"type": "ai_talk", "agent_id": agent.id}])
        async with mcp_session(app.api_url, client.accesskey, tmp_path / "mcp.log") as session:
            # The caller says nothing until well after the question: it answers it.
            dialogue = asyncio.create_task(
                run_dialogue(f"8{flow.id}", [Silence(7.0), Say(ANSWER), Silence(5.0)])
            )
            call = await _live_call(session)
            said = tool_result(
                await session.call_tool(
                    "say_and_listen", {"call_id": call["id"], "text": QUESTION, "wait_s": 25}
                )
            )
            result = await dialogue
        await asyncio.sleep(0.5)
        record = await client.calls.get(call["id"])

    assert result.sipp.ok, result.sipp.output + result.sipp.errors
    answer = words(said["caller_said_untrusted"] or "")
    # Key words only: tiny.en has heard espeak's "reset" as "reflect".
    assert "need" in answer, said
    assert "pass" in answer, said
    assert "UNTRUSTED" in said["warning"]
    # On the wire: the caller heard the question first, and spoke after it began.
    assert result.agent, "the caller heard nothing"
    question = await heard(speech_models, result.agent[0])
    assert sounds_like(question, QUESTION), f"not the question: {question!r}"
    assert result.caller[0].start > result.agent[0].start
    lines = [(line.role, line.text) for line in record.transcript]
    assert lines[0] == ("agent", QUESTION)
    assert lines[1][0] == "caller"
    assert words(lines[1][1]) == answer  # the line say_and_listen returned


async def test_send_dtmf_reaches_the_far_end_of_an_outbound_call(app: App, tmp_path: Path) -> None:
    async with await Client.signup(app.api_url, "assistant-2", "password1") as client:
        await client.flows.create("hold", [{"type": "pause", "seconds": 30}])
        answerer = SippAnswerer()
        capture = RtpCapture(answerer.media_port)
        await capture.start()
        await answerer.start()
        async with mcp_session(app.api_url, client.accesskey, tmp_path / "mcp.log") as session:
            placed = tool_result(
                await session.call_tool("make_call", {"destination": "sipp-uas", "flow": "hold"})
            )
            call = await _live_call(session)
            pressed = tool_result(
                await session.call_tool("send_dtmf", {"call_id": call["id"], "digits": "4w2#"})
            )
            await asyncio.sleep(3.0)  # 3 keys of 0.16 s, a 0.5 s wait: all played by now
            tool_result(await session.call_tool("hangup_call", {"call_id": call["id"]}))
            result = await answerer.wait(timeout=20)
            await capture.stop()
            await asyncio.sleep(0.5)
            transcript = tool_result(
                await session.call_tool("get_transcript", {"call_id": call["id"]})
            )

    assert result.ok, result.output + result.errors
    assert call["id"] == placed["id"] == pressed["id"]
    assert [k.key for k in keys_in(capture.received())] == ["4", "2", "#"]
    assert {"role": "system", "text": "api: send keys 4w2#"} in [
        {k: line[k] for k in ("role", "text")} for line in transcript["transcript"]
    ]


async def test_transfer_call_moves_a_live_caller_to_the_desk(
    app: App, sample_agent: tuple[str, list[WebhookRequest]], tmp_path: Path
) -> None:
    url, _ = sample_agent
    lead_s = 6.0  # the caller speaks once it is through to the desk
    audio = script_audio([Silence(lead_s), Say(CALLER_SPEECH), Silence(3.0)])
    path = CACHE_DIR / "live-transfer.ulaw"
    path.write_bytes(audio)
    answerer = SippAnswerer()  # PJSIP/sipp-uas: the policy's [transfer.desk]
    far_end = RtpCapture(answerer.media_port)
    await far_end.start()
    await answerer.start()
    async with await Client.signup(app.api_url, "assistant-3", "password1") as client:
        agent = await client.agents.create("front", webhook=url)
        long_welcome = (
            "Hello and welcome. This is a long welcome message that is still being said when "
            "the assistant decides to put you through to the front desk, which cuts it short."
        )
        flow = await client.flows.create(
            "front", [{"type": "ai_talk", "agent_id": agent.id, "welcome_message": long_welcome}]
        )
        caller = SippCall(f"8{flow.id}", path, hangup_after_s=len(audio) / 8000 + 0.5)
        async with mcp_session(app.api_url, client.accesskey, tmp_path / "mcp.log") as session:
            await caller.start()
            call = await _live_call(session)
            await asyncio.sleep(1.0)  # the welcome is playing
            moved = tool_result(
                await session.call_tool("transfer_call", {"call_id": call["id"], "target": "desk"})
            )
            async with asyncio.timeout(15):  # the transfer is under way once on record
                while "system" not in {
                    e.role for e in (await client.calls.get(call["id"])).transcript
                }:
                    await asyncio.sleep(0.2)
            again = await session.call_tool(
                "transfer_call", {"call_id": call["id"], "target": "desk"}
            )
            result = await caller.wait()
            answered = await answerer.wait(timeout=20)
            await far_end.stop()
            await asyncio.sleep(0.5)
            record = await client.calls.get(call["id"])

    assert result.ok, result.output + result.errors
    assert answered.ok, answered.output + answered.errors  # it got the BYE when the caller left
    assert moved["id"] == call["id"]
    # The caller's words reach the desk untouched: the caller is through to it.
    speech = audio[int(lead_s * 8000) :].rstrip(b"\xff")
    assert speech[:4000] in payload_bytes(far_end.received())
    # A transfer under way is not cut by another.
    assert "HTTP 409 call_not_active" in _error(again)
    assert ("system", "api: transfer to desk") in [(e.role, e.text) for e in record.transcript]
    assert record.status == "ended"


async def test_make_call_with_a_message_is_heard_by_the_answering_side(
    app: App, speech_models: SpeechModels, tmp_path: Path
) -> None:
    message = "Your parcel will arrive on Monday morning."
    async with await Client.signup(app.api_url, "assistant-4", "password1") as client:
        answerer = SippAnswerer()
        capture = RtpCapture(answerer.media_port)
        await capture.start()
        await answerer.start()
        async with mcp_session(app.api_url, client.accesskey, tmp_path / "mcp.log") as session:
            placed = tool_result(
                await session.call_tool(
                    "make_call", {"destination": "sipp-uas", "message": message}
                )
            )
            result = await answerer.wait(timeout=30)  # the flow hangs up once it is said
            await capture.stop()
        flows = await client.flows.list()
        record = await client.calls.get(placed["id"])

    assert result.ok, result.output + result.errors
    said = bursts(capture.received(), ULAW.decode, gap_s=1.0)
    assert said, "the answering side heard nothing"
    text = " ".join([await heard(speech_models, b) for b in said])
    assert "parcel" in text or "monday" in text, text
    assert [f.name for f in flows] == ["mcp-say"]
    assert record.message == message
