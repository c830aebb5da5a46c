"""An agent's own voice and language, set through the API, on a real call through the App.

The session's models have the default voice "joe" and "slow" (joe's weights at length_scale
2.0, tests/conftest.py). What the caller heard is taken from the RTP capture.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import numpy as np
import pytest

from ari_offload.agent.contract import WebhookRequest
from ari_offload.agent.sample import RESET_REPLY
from ari_offload.app import App
from ari_offload.audio import SAMPLE_RATE
from ari_offload.speech.models import SpeechModels
from testbed.dialogue import Say, Silence, run_dialogue
from tests.integration.helpers import heard

pytestmark = [
    pytest.mark.integration,
    pytest.mark.models,
    pytest.mark.usefixtures("loop_must_not_block"),
]

WELCOME = "How can I help you today?"


async def default_voice_seconds(models: SpeechModels, text: str) -> float:
    """How long the server's default voice takes to say ``text`` (pauses included)."""
    pcm = [pcm async for _sentence, pcm in models.tts_for(None).stream(text)]
    return float(np.concatenate(pcm).size) / SAMPLE_RATE


async def post(http: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, Any]:
    async with http.post(url, json=body) as resp:
        return resp.status, await resp.json()


async def test_an_agent_made_with_the_slow_voice_is_heard_speaking_slowly(
    app: App, sample_agent: tuple[str, list[WebhookRequest]], speech_models: SpeechModels
) -> None:
    url, received = sample_agent
    base = app.api_url + "/v1.0"
    async with aiohttp.ClientSession() as http:
        _, signup = await post(http, f"{base}/auth/signup", {"name": "v", "password": "password1"})
        key = f"?accesskey={signup['accesskey']['token']}"
        agent_body = {"name": "slow-agent", "webhook": url, "voice": "slower"}
        status, err = await post(http, f"{base}/agents{key}", agent_body)
        assert (status, err["error"]["field"]) == (422, "voice")
        assert err["error"]["message"].endswith("voices: joe, slow")  # what the server loaded
        status, agent = await post(
            http, f"{base}/agents{key}", {**agent_body, "voice": "slow", "language": "en-US"}
        )
        assert status == 201, agent
        actions = [{"type": "ai_talk", "agent_id": agent["id"], "welcome_message": WELCOME}]
        status, flow = await post(http, f"{base}/flows{key}", {"name": "f", "actions": actions})
        assert status == 201, flow

    result = await run_dialogue(
        f"8{flow['id']}", [Silence(4.0), Say("I need to reset my password"), Silence(7.0)]
    )

    assert result.sipp.ok, result.sipp.output + result.sipp.errors
    assert len(received) == 1
    # The agent's "en-US" (read as en) reaches whisper without harm; that an agent's language
    # is the one the engine is asked for is proved in tests/unit/test_conversation_port.py.
    assert "password" in received[0].text.lower()
    welcome = result.agent[0]
    reply = next(b for b in result.agent if b.start >= result.caller[0].end)
    # Both the welcome and the reply are in the agent's voice: far longer than the default's
    # (length_scale 2.0 makes it about 1.5-1.7 times as long; piper varies by a few percent).
    assert welcome.seconds > 1.3 * await default_voice_seconds(speech_models, WELCOME)
    assert reply.seconds > 1.3 * await default_voice_seconds(speech_models, RESET_REPLY)
    assert "help you" in await heard(speech_models, welcome)
    assert "email address" in await heard(speech_models, reply)
