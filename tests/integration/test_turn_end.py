"""End of turn on real calls: a pause mid-sentence does not cut the caller off, a finished
sentence is answered; with ARI_OFFLOAD_SPEECH_TURN_ENGINE=smart-turn (and the transcript cue)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from ari_offload.agent.contract import WebhookRequest
from ari_offload.config import SpeechSettings
from ari_offload.media.g711 import ulaw_encode
from ari_offload.speech.models import SpeechModels, vad_params_from
from ari_offload.speech.turn_end import SmartTurnModel
from testbed.dialogue import Say, Silence, Voice, run_dialogue
from tests.integration.conftest import AgentServiceFactory
from tests.integration.helpers import heard, words
from tests.integration.test_conversation import replies_after_each_utterance

pytestmark = [
    pytest.mark.integration,
    pytest.mark.models,
    pytest.mark.usefixtures("loop_must_not_block"),
]


@pytest.fixture(scope="module")
def speech_models(speech_models: SpeechModels) -> Iterator[SpeechModels]:
    """The session's loaded engines with the smart-turn engine on (not the default)."""
    settings = SpeechSettings(turn_engine="smart-turn")
    model = SmartTurnModel(settings.turn_model)
    model.warmup()
    models = SpeechModels(
        speech_models.transcriber, list(speech_models.voices.values()), speech_models.vad,
        vad_params_from(settings), seconds=speech_models.seconds, turn_end=model,
        turn_end_silence_ms=settings.turn_end_silence_ms, turn_threshold=settings.turn_threshold,
    )  # fmt: skip
    yield models
    models.close()


async def piper_voice(models: SpeechModels, texts: list[str]) -> Voice:
    """A human-like caller: espeak says every fragment as a whole sentence, falling pitch
    and all, which no end-of-turn detector can tell from a finished one. Synthesized in a
    thread, before the call: the loop must not block."""

    def say(text: str) -> bytes:
        return ulaw_encode(models.synthesizer.synthesize_sentence(text))

    spoken = {text: await asyncio.to_thread(say, text) for text in texts}
    return spoken.__getitem__


async def test_a_pause_to_read_out_a_number_is_one_turn(
    start_agent_service: AgentServiceFactory,
    sample_agent: tuple[str, list[WebhookRequest]],
    speech_models: SpeechModels,
) -> None:
    url, received = sample_agent
    await start_agent_service(url, welcome=None)

    first, rest = "My order number is", "four five six seven."
    result = await run_dialogue(
        "8talk",
        [Silence(1.0), Say(first), Silence(0.6), Say(rest), Silence(5.0)],
        voice=await piper_voice(speech_models, [first, rest]),
    )

    assert result.sipp.ok, result.sipp.output + result.sipp.errors
    assert len(received) == 1, [r.text for r in received]
    said = words(received[0].text) + received[0].text
    assert "order number" in said
    assert "seven" in said or "4567" in said  # whisper writes the digits either way


async def test_a_finished_sentence_gets_the_reply(
    start_agent_service: AgentServiceFactory,
    sample_agent: tuple[str, list[WebhookRequest]],
    speech_models: SpeechModels,
) -> None:
    url, received = sample_agent
    await start_agent_service(url, welcome=None)

    result = await run_dialogue(
        "8talk", [Silence(1.0), Say("I need to reset my password."), Silence(4.0)]
    )

    assert result.sipp.ok, result.sipp.output + result.sipp.errors
    assert len(received) == 1
    assert "password" in received[0].text.lower()
    (reply,) = replies_after_each_utterance(result)
    assert "email address" in await heard(speech_models, reply)
