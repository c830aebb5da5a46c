"""The whole product: REST API + store + controller + speech, with real calls both ways."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ari_offload.agent.contract import WebhookRequest
from ari_offload.agent.sample import RECEIVED_KEY, make_sample_agent_app
from ari_offload.app import UNKNOWN_FLOW_TEXT, App
from ari_offload.sdk.client import ApiError, Client
from ari_offload.speech.models import SpeechModels
from testbed.audio import silence_file, speech_file
from testbed.capture import RtpCapture
from testbed.dialogue import Say, Silence, bursts, run_dialogue
from testbed.sipp import SippAnswerer, SippCall
from tests.integration.helpers import sounds_like, words

pytestmark = [pytest.mark.integration, pytest.mark.models]

# The README's three curl calls, verbatim (the webhook is the sample agent on port 9000).
SIGNUP = {"name": "my-agent", "password": "yourpassword"}
AGENT = {
    "name": "support-agent",
    "detail": "AI-powered customer support agent",
    "webhook": "http://127.0.0.1:9000/ai-webhook",
}
FLOW_WELCOME = "Hello! How can I help you today?"
SHIPPED = "Your order has been shipped today."
FLOW = {
    "name": "support-flow",
    "actions": [
        {
            "type": "ai_talk",
            "agent_id": "AGENT_ID",
            "welcome_message": FLOW_WELCOME,
        }
    ],
}


@pytest.fixture
async def agent_on_9000() -> AsyncIterator[list[WebhookRequest]]:
    agent = make_sample_agent_app()
    runner = web.AppRunner(agent)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 9000).start()
    except OSError as exc:
        pytest.fail(f"port 9000 (the README's webhook) is taken: {exc}")
    yield agent[RECEIVED_KEY]
    await runner.cleanup()


async def post(session: aiohttp.ClientSession, url: str, body: Any) -> Any:
    async with session.post(url, json=body) as resp:
        assert resp.status in (200, 201), await resp.text()
        return await resp.json()


async def test_readme_curl_calls_then_a_dialplan_call(
    app: App, agent_on_9000: list[WebhookRequest], speech_models: SpeechModels
) -> None:
    base = app.api_url + "/v1.0"
    async with aiohttp.ClientSession() as http:
        token = (await post(http, f"{base}/auth/signup", SIGNUP))["accesskey"]["token"]
        agent = await post(http, f"{base}/agents?accesskey={token}", AGENT)
        flow_body = json.loads(json.dumps(FLOW).replace("AGENT_ID", agent["id"]))
        flow = await post(http, f"{base}/flows?accesskey={token}", flow_body)

    # The test bed's dialplan runs a flow by id (sip:8<flow id>); names never reach a flow.
    result = await run_dialogue(
        f"8{flow['id']}", [Silence(3.5), Say("I need to reset my password"), Silence(5.0)]
    )

    assert result.sipp.ok, result.sipp.output + result.sipp.errors
    welcome = speech_models.transcriber.transcribe(result.agent[0].pcm)
    assert sounds_like(welcome, FLOW_WELCOME), welcome
    assert len(agent_on_9000) == 1
    assert "password" in agent_on_9000[0].text.lower()
    async with Client(app.api_url, token) as client:
        await asyncio.sleep(0.5)
        (call,) = await client.calls.list()
        detail = await client.calls.get(call.id)
    assert call.status == "ended"
    assert call.started_at is not None
    assert call.answered_at is not None
    assert call.ended_at is not None
    assert call.started_at <= call.answered_at <= call.ended_at
    assert call.direction == "in"
    assert [e.role for e in detail.transcript] == ["agent", "caller", "agent"]
    assert "email address" in detail.transcript[2].text.lower()
    assert len(detail.turns) == 1
    async with aiohttp.ClientSession() as http, http.get(app.api_url + "/metrics") as resp:
        metrics = await resp.text()
    outcome = (call.hangup_reason or "").split(":")[0]
    assert f'ari_offload_calls_total{{direction="in",outcome="{outcome}"}} 1.0' in metrics
    assert 'ari_offload_turn_latency_seconds_count{part="total"} 1.0' in metrics
    assert 'ari_offload_active_calls{direction="in"} 0.0' in metrics
    assert (detail.turns[0].total_ms or 0) > 0


async def test_outbound_call_speaks_to_the_answering_side(
    app: App, speech_models: SpeechModels
) -> None:
    text = "This is a reminder from ari-offload about your appointment tomorrow."
    async with await Client.signup(app.api_url, "outbound", "outbound-password") as client:
        flow = await client.flows.create(
            "reminder", [{"type": "talk", "text": text}, {"type": "pause", "seconds": 1}]
        )
        answerer = SippAnswerer()
        capture = RtpCapture(answerer.media_port)
        await capture.start()
        await answerer.start()

        call = await client.calls.create("sipp-uas", flow.id)  # an endpoint the policy names
        async with asyncio.timeout(20):
            while (await client.calls.get(call.id)).status != "active":
                await asyncio.sleep(0.2)
        active = [c.id for c in await client.calls.list(status="active")]
        result = await answerer.wait()
        await capture.stop()
        await asyncio.sleep(0.5)
        ended = [c.id for c in await client.calls.list(status="ended")]

    assert result.ok, result.output + result.errors
    assert call.id in active
    assert call.id in ended
    heard = bursts(capture.received(), speech_models_decoder(), gap_s=1.0)
    assert heard, "the answering side heard nothing"
    said = speech_models.transcriber.transcribe(heard[0].pcm)
    assert sounds_like(said, text), said


async def test_unknown_flow_apologises_and_hangs_up(app: App, speech_models: SpeechModels) -> None:
    call = SippCall("8no-such-flow", speech_file("hello?", lead_silence_s=0.2), hangup_after_s=20)
    capture = RtpCapture(call.media_port)
    await capture.start()

    result = await call.run()
    await capture.stop()

    assert result.ok, result.output + result.errors
    heard = bursts(capture.received(), speech_models_decoder(), gap_s=1.0)
    assert heard
    said = speech_models.transcriber.transcribe(heard[0].pcm)
    assert sounds_like(said, UNKNOWN_FLOW_TEXT), said
    # The app hung up long before the caller's 20 s: nobody is left in silence.
    assert capture.packets[-1].time - capture.packets[0].time < 10


async def test_api_talk_and_hangup_on_a_live_call(
    app: App, agent_on_9000: list[WebhookRequest], speech_models: SpeechModels
) -> None:
    async with await Client.signup(app.api_url, "live", "live-password") as client:
        agent = await client.agents.create(
            name="live", detail="", webhook="http://127.0.0.1:9000/ai-webhook"
        )
        flow = await client.flows.create("live-flow", [{"type": "ai_talk", "agent_id": agent.id}])
        # The caller stays silent: what it hears can only come from the API's `talk`.
        call = SippCall(f"8{flow.id}", silence_file(10.0), hangup_after_s=30)
        capture = RtpCapture(call.media_port)
        await capture.start()
        await call.start()
        async with asyncio.timeout(15):
            while not (live := await client.calls.list(status="active")):
                await asyncio.sleep(0.2)
        await client.calls.talk(live[0].id, SHIPPED)
        await asyncio.sleep(4.0)
        await client.calls.hangup(live[0].id)
        result = await call.wait()
        await capture.stop()

    assert result.ok, result.output + result.errors
    heard = [
        words(speech_models.transcriber.transcribe(b.pcm))
        for b in bursts(capture.received(), speech_models_decoder(), gap_s=1.0)
    ]
    assert any(sounds_like(text, SHIPPED) for text in heard), heard
    assert capture.packets[-1].time - capture.packets[0].time < 15, "the API hung up"


def speech_models_decoder() -> Any:
    from ari_offload.media.g711 import ULAW

    return ULAW.decode


async def test_outbound_call_nobody_can_take_is_failed_not_lost(app: App) -> None:
    async with await Client.signup(app.api_url, "unlucky", "unlucky-password") as client:
        flow = await client.flows.create("hello", [{"type": "talk", "text": "Hello."}])
        try:
            call_id = (await client.calls.create("nobody", flow.id)).id  # policy: PJSIP/nobody
            refused = None
        except ApiError as exc:
            refused = exc
            (failed,) = await client.calls.list()
            call_id = failed.id
        async with asyncio.timeout(10):
            while (call := await client.calls.get(call_id)).status != "failed":
                await asyncio.sleep(0.2)

    assert call.hangup_reason
    if refused is not None:  # Asterisk refused at once: the API says so, without its details
        assert refused.status == 502
        assert "PJSIP" not in refused.message
