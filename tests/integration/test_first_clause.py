"""The reply's first audio is its first clause: a real call, an agent with a long first
sentence (as an LLM answers), and what the caller heard transcribed from the RTP capture."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest
from aiohttp import web

from ari_offload.app import App
from ari_offload.audio import SAMPLE_RATE
from ari_offload.sdk.client import Client
from ari_offload.speech.models import SpeechModels
from ari_offload.speech.reply_text import CLAUSE_PAUSE_MS
from ari_offload.speech.vad import frame_level_dbfs
from testbed.dialogue import Burst, Say, Silence, run_dialogue
from tests.integration.helpers import heard

pytestmark = [
    pytest.mark.integration,
    pytest.mark.models,
    pytest.mark.usefixtures("loop_must_not_block"),
]

FRAME = SAMPLE_RATE // 50


@pytest.fixture
async def echo_agent() -> AsyncIterator[tuple[str, list[str]]]:
    """Answers "You said: <words>. How else can I help?"; (url, texts it was sent)."""
    received: list[str] = []

    async def hook(request: web.Request) -> web.Response:
        text = str((await request.json())["text"])
        received.append(text)
        return web.json_response({"text": f"You said: {text.rstrip('.?!')}. How else can I help?"})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook", received
    await runner.cleanup()


def first_piece(burst: Burst, gap_ms: int) -> Burst:
    """The burst's audio up to its first silence of at least ``gap_ms``."""
    frames = burst.pcm[: burst.pcm.size // FRAME * FRAME].reshape(-1, FRAME)
    quiet = [frame_level_dbfs(frame) < -45.0 for frame in frames]
    need = gap_ms // 20
    for start in range(len(quiet) - need):
        if all(quiet[start : start + need]) and start > 0:
            pcm = np.concatenate(list(frames[:start]))
            return Burst(burst.start, burst.start + start * 0.02, pcm)
    return burst


async def test_the_first_audio_of_a_long_first_sentence_is_its_first_clause(
    app: App, echo_agent: tuple[str, list[str]], speech_models: SpeechModels
) -> None:
    url, received = echo_agent
    async with await Client.signup(app.api_url + "/v1.0", "clause", "password1") as client:
        agent = await client.agents.create(name="echo", webhook=url)
        flow = await client.flows.create("clause", [{"type": "ai_talk", "agent_id": agent.id}])
        result = await run_dialogue(
            f"8{flow.id}", [Silence(1.0), Say("I need to reset my password"), Silence(7.0)]
        )
        calls = await client.calls.list()
        detail = await client.calls.get(calls[0].id)

    assert result.sipp.ok, result.sipp.output + result.sipp.errors
    assert len(received) == 1
    assert "password" in received[0].lower()
    reply = next(b for b in result.agent if b.start >= result.caller[0].end)
    # The clause was synthesized on its own and played first, the pause after it put back.
    clause = first_piece(reply, gap_ms=CLAUSE_PAUSE_MS - 40)
    assert clause.seconds < 1.0, "the first piece is a clause, not the whole sentence"
    assert await heard(speech_models, clause) == "you said"
    whole = await heard(speech_models, reply)
    assert whole.startswith("you said")
    assert "password" in whole
    assert "help" in whole
    # The agent's line is the reply as written, once (the chunks are not separate lines).
    agent_lines = [line.text for line in detail.transcript if line.role == "agent"]
    assert agent_lines == [f"You said: {received[0].rstrip('.?!')}. How else can I help?"]
    assert detail.turns[0].tts_first_audio_ms is not None
