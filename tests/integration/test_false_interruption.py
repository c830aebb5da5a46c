"""Sounds over the agent's reply: a cough does not stop it; an "um" does, and it resumes.

The whole product (API, store, controller, speech) on the test bed: a SIPp caller asks a
question, coughs into the long reply, says "um" into it later and stays silent. The default
VAD (silero) hears no voice in the cough: the reply plays on (webrtcvad called it speech
and barged in). The "um" is voice: barge-in cannot wait for STT, so playback stops; whisper
then hears only a filler, and the reply picks up a little before the cut. What the caller
heard is taken from the RTP capture and transcribed here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import numpy as np
import pytest
from aiohttp import web

from ari_offload.app import App
from ari_offload.sdk.client import Client
from ari_offload.speech.models import SpeechModels
from testbed.audio import cough_audio
from testbed.dialogue import Burst, Say, Silence, espeak_voice, run_dialogue
from tests.integration.helpers import heard

pytestmark = [
    pytest.mark.integration,
    pytest.mark.models,
    pytest.mark.usefixtures("loop_must_not_block"),
]

QUESTION = "Tell me about your plans"
COUGH = "<cough>"  # said by the caller's voice below as a noise burst, not by espeak
# espeak's, which whisper writes "Um, um.": backchannels (voice/interruption.py). One espeak
# "Um" is ~0.25 s of voice to silero, at the edge of the 200 ms a barge-in needs: a run in
# several let the reply play on through it (fine for a caller, no test of the resume).
FILLER = "Um, um"
REPLY = (
    "Let me tell you about all of our plans. The basic plan costs ten dollars a month. "
    "The standard plan costs twenty dollars a month and adds support. "
    "The premium plan costs fifty dollars a month and adds a personal manager. "
    "All plans can be cancelled at any time."
)


def caller_voice(text: str) -> bytes:  # espeak, but the cough
    return cough_audio() if text == COUGH else espeak_voice()(text)


@pytest.fixture
async def talkative_agent() -> AsyncIterator[tuple[str, list[dict[str, object]]]]:
    """A webhook that answers every request with the long REPLY; (url, requests)."""
    requests: list[dict[str, object]] = []

    async def hook(request: web.Request) -> web.StreamResponse:
        requests.append(await request.json())
        return web.json_response({"text": REPLY})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook", requests
    await runner.cleanup()


async def test_a_cough_leaves_the_reply_playing_an_um_stops_it_and_it_resumes(
    app: App,
    talkative_agent: tuple[str, list[dict[str, object]]],
    speech_models: SpeechModels,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ari_offload.conversation")
    webhook, requests = talkative_agent
    async with await Client.signup(app.api_url, "cougher", "cougher-password") as client:
        agent = await client.agents.create(name="plans", detail="", webhook=webhook)
        flow = await client.flows.create("plans", [{"type": "ai_talk", "agent_id": agent.id}])

        # The cough comes 2.2 s after the question: inside the reply's first sentence (its
        # first ~1.9 s of audio) for a reply latency of 0.5-2 s (a 2-core AVX2 machine
        # answers in ~1.1 s); the "um" 3 s later, in its second or third sentence. The
        # caller then stays silent while the ~15 s reply ends.
        result = await run_dialogue(
            f"8{flow.id}",
            [Silence(0.5), Say(QUESTION), Silence(2.2), Say(COUGH), Silence(3.0), Say(FILLER),
             Silence(16.0)],
            voice=caller_voice,
        )  # fmt: skip
        async with asyncio.timeout(20):  # its end is written after all it said
            while (call := (await client.calls.list())[0]).status != "ended":
                await asyncio.sleep(0.2)
        detail = await client.calls.get(call.id)

    assert result.sipp.ok, result.sipp.output + result.sipp.errors
    question, cough, filler = result.caller
    playing = next(b for b in result.agent if b.start >= question.end)
    assert playing.start < cough.start < playing.end, "the cough came while the reply played"
    cut = next((b for b in result.agent if b.start < filler.start <= b.end + 0.05), None)
    assert cut is not None, "the reply was not playing when the caller said um"
    stopped_after = cut.end - filler.start
    assert stopped_after < 1.0, f"playback went on {stopped_after:.2f} s into the um"
    # one barge-in, the um's: the cough stopped nothing
    assert caplog.text.count("barge-in, playback stopped") == 1, caplog.text
    resumed = [b for b in result.agent if b.start >= filler.end]
    assert resumed, "silence after the um: the reply never resumed"
    pcm = np.concatenate([b.pcm for b in resumed])
    rest = await heard(speech_models, Burst(resumed[0].start, resumed[-1].end, pcm))
    assert "manager" in rest, f"the later words of the reply were not heard: {rest!r}"
    assert "cancel" in rest, f"the reply did not play to its end: {rest!r}"
    assert [r["text"] for r in requests] == [requests[0]["text"]], "cough and um were no turn"
    assert "false interruption: resuming reply" in caplog.text
    # One agent line for the reply, heard in full in the end: no "[heard: ...]" left on it.
    assert [(line.role, line.text) for line in detail.transcript][1:] == [("agent", REPLY)]
    assert detail.transcript[0].role == "caller"
    assert len(detail.turns) == 1
