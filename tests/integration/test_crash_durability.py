"""A SIGKILL of `ari-offload serve` mid-call loses nothing the caller had heard a reply for.

A real caller (SIPp) says two sentences to an ai_talk flow through a real `serve`; once the
webhook has been asked turn 2 (so reply 1 was played), the app is killed; a second `serve` on
the same data dir adopts the caller still in the app. The API then shows turn 1 whole,
turn 2, the restart, and the call's end once the caller hangs up.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ari_offload.agent.contract import WebhookRequest
from ari_offload.agent.sample import sample_reply
from ari_offload.observe.recorder import ADOPTED_TEXT
from ari_offload.sdk.client import Client
from testbed.asterisk import TESTBED_POLICY_FILE, Testbed
from testbed.dialogue import Say, Silence, Step, script_audio
from testbed.serve import ServeProcess
from testbed.sipp import SippCall
from tests.integration.conftest import free_port

pytestmark = [pytest.mark.integration, pytest.mark.models]

WELCOME = "Hello! How can I help you today?"
FIRST, SECOND = "What are your opening hours?", "I need to reset my password."
# Long enough for the welcome, then reply 1 to play whole, and for the second `serve` to load
# its models (about 10 s here) and adopt the caller, and play the welcome again, before the
# caller hangs up.
SCRIPT: list[Step] = [Silence(4.0), Say(FIRST), Silence(10.0), Say(SECOND), Silence(30.0)]


async def turns_asked(requests: list[WebhookRequest], turn: int) -> None:
    async with asyncio.timeout(60):
        while not any(r.turn == turn for r in requests):
            await asyncio.sleep(0.1)


async def test_a_sigkill_mid_call_keeps_what_the_caller_heard(
    testbed: Testbed,
    sample_agent: tuple[str, list[WebhookRequest]],
    tmp_path: Path,
) -> None:
    webhook, requests = sample_agent
    port = free_port()
    # Both runs on the same data dir and port; their logs go to one file, the second after.
    serve = ServeProcess(tmp_path, port, TESTBED_POLICY_FILE)
    audio = tmp_path / "caller.ulaw"
    audio.write_bytes(script_audio(SCRIPT))
    try:
        await serve.start()
        await testbed.wait_app()
        async with await Client.signup(serve.api_url, "crash", "crash-password") as client:
            agent = await client.agents.create("support", webhook=webhook)
            flow = await client.flows.create(
                "support",
                [{"type": "ai_talk", "agent_id": agent.id, "welcome_message": WELCOME}],
            )
        caller = SippCall(f"8{flow.id}", audio, hangup_after_s=len(audio.read_bytes()) / 8000)
        await caller.start()
        await turns_asked(requests, 2)  # reply 1 has been played: the caller spoke again
        await serve.kill()
        await serve.start()
        await testbed.wait_app()
        result = await caller.wait()
        assert result.ok, result.output + result.errors
        async with await Client.login(serve.api_url, "crash", "crash-password") as client:
            async with asyncio.timeout(20):
                while (call := (await client.calls.list())[0]).status != "ended":
                    await asyncio.sleep(0.2)
            detail = await client.calls.get(call.id)
    finally:
        exit_code = await serve.stop()

    assert [r.turn for r in requests] == [1, 2], "no turn was asked twice, none renumbered"
    reply_1 = sample_reply(requests[0].text).text
    lines = [(line.role, line.text) for line in detail.transcript]
    assert lines[:4] == [
        ("agent", WELCOME),
        ("caller", requests[0].text),
        ("agent", reply_1),  # played whole before the caller spoke again: no [heard: ...]
        ("caller", requests[1].text),
    ]
    assert ("system", ADOPTED_TEXT) in lines, "the record says the app restarted mid-call"
    restart = lines.index(("system", ADOPTED_TEXT))
    assert lines[restart + 1] == ("agent", WELCOME), "the adopted call's flow began again"
    turns = {t.turn: t for t in detail.turns}
    assert sorted(turns) == [1, 2]
    one = turns[1]
    measured = (one.endpoint_ms, one.stt_ms, one.webhook_ms, one.tts_first_audio_ms, one.total_ms)
    assert all(value is not None and value >= 0 for value in measured), measured
    assert one.webhook_error is None
    assert turns[2].endpoint_ms is not None, "turn 2 was on record before the agent answered"
    assert detail.hangup_reason == "caller"
    assert serve.starts == 2
    assert serve.error_lines() == [], "any logger, in the killed and the restarted serve's log"
    assert exit_code == 0, "the restarted serve stopped cleanly"
    assert await testbed.wait_idle() == ([], [])
