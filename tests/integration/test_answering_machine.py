"""Answering-machine detection on real outbound calls: a SIPp answerer plays a voicemail
greeting and a beep (and gets the voicemail message after the beep), or says "Hello?" and
waits (and gets the flow's ai_talk). What the answerer heard is captured on its RTP port and
transcribed with whisper."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from ari_offload.app import App
from ari_offload.media.g711 import ULAW
from ari_offload.sdk.client import Call, Client
from ari_offload.speech.models import SpeechModels
from ari_offload.voice.tone import ToneTracker
from testbed.capture import CapturedPacket, RtpCapture
from testbed.dialogue import Burst, bursts
from testbed.greetings import HELLO, VOICEMAIL, render, write_ulaw
from testbed.sipp import SippAnswerer, SippCall
from tests.integration.helpers import heard

pytestmark = [
    pytest.mark.integration,
    pytest.mark.models,
    pytest.mark.usefixtures("loop_must_not_block"),
]

VOICEMAIL_MESSAGE = (
    "Hello, this is Acme Dental calling about your appointment on Tuesday. Please call us back."
)
WELCOME = "Hello! This is Acme Dental. How can I help you today?"


async def flow_for(client: Client, webhook: str) -> str:
    agent = await client.agents.create(name="dental", detail="", webhook=webhook)
    flow = await client.flows.create(
        "reminder",
        [
            {"type": "detect_machine", "voicemail_message": VOICEMAIL_MESSAGE},
            {"type": "ai_talk", "agent_id": agent.id, "welcome_message": WELCOME},
        ],
    )
    return flow.id


def beep_end(sent: list[CapturedPacket]) -> float:
    """When the answerer's beep ended on the wire: its first packet after the tone (in
    capture time), the earliest moment anyone hearing the call can know the beep is over."""
    tracker = ToneTracker()
    for packet in sorted(sent, key=lambda p: p.time):
        if tracker.feed(ULAW.decode(packet.packet.payload)) is not None:
            return packet.time
    raise AssertionError("no beep in what the answerer sent")


async def transcribed(models: SpeechModels, said: list[Burst]) -> str:
    whole = Burst(said[0].start, said[-1].end, np.concatenate([b.pcm for b in said]))
    return await heard(models, whole)


async def test_a_voicemail_greeting_gets_the_message_after_its_beep(
    app: App, sample_agent: tuple[str, list[object]], speech_models: SpeechModels, tmp_path: Path
) -> None:
    greeting = await asyncio.to_thread(render, VOICEMAIL, speech_models.synthesizer)
    assert greeting.speech_end_s > 5.5  # the ~6 s greeting the scenario is about
    answerer = SippAnswerer(write_ulaw(greeting, tmp_path))
    capture = RtpCapture(answerer.media_port)
    async with await Client.signup(app.api_url, "amd-machine", "password1") as client:
        flow_id = await flow_for(client, sample_agent[0])
        await capture.start()
        await answerer.start()
        call = await client.calls.create("sipp-uas", flow_id)
        result = await answerer.wait(timeout=60)  # until the app hangs up
        await capture.stop()
        record = await final(client, call)

    assert result.ok, result.output + result.errors
    assert record.answered_by == "machine"
    assert record.hangup_reason == "voicemail"
    system = [line.text for line in record.transcript if line.role == "system"]
    assert any(text.startswith("answered by a machine") for text in system), system
    assert any("after its beep" in text for text in system), system
    assert not any(line.role == "agent" for line in record.transcript)  # ai_talk never ran
    said = bursts(capture.received(), ULAW.decode, gap_s=1.0)
    assert said, "the answering machine recorded nothing"
    message = await transcribed(speech_models, said)
    assert "appointment" in message, message
    assert "call us back" in message, message
    assert "help you" not in message  # the welcome is for people
    ended = beep_end(capture.sent())
    # The machine records from the end of its beep: the message starts after it, not long after.
    assert said[0].start >= ended, (said[0].start, ended)
    assert said[0].start - ended < 2.0, said[0].start - ended


async def test_a_person_saying_hello_gets_the_flow(
    app: App, sample_agent: tuple[str, list[object]], speech_models: SpeechModels, tmp_path: Path
) -> None:
    answerer = SippAnswerer(
        write_ulaw(await asyncio.to_thread(render, HELLO, speech_models.synthesizer), tmp_path)
    )
    capture = RtpCapture(answerer.media_port)
    async with await Client.signup(app.api_url, "amd-person", "password1") as client:
        flow_id = await flow_for(client, sample_agent[0])
        await capture.start()
        await answerer.start()
        call = await client.calls.create("sipp-uas", flow_id)
        async with asyncio.timeout(30):  # the welcome was spoken: the person is in the flow
            while not await spoke(client, call):
                await asyncio.sleep(0.2)
        await asyncio.sleep(4.0)  # the rest of the welcome
        await client.calls.hangup(call.id)
        result = await answerer.wait(timeout=30)
        await capture.stop()
        record = await final(client, call)

    assert result.ok, result.output + result.errors
    assert record.answered_by == "human"
    system = [line.text for line in record.transcript if line.role == "system"]
    assert any(text.startswith("answered by a person") for text in system), system
    said = bursts(capture.received(), ULAW.decode, gap_s=1.0)
    assert said, "the person heard nothing"
    welcome = await transcribed(speech_models, said)
    assert "help you" in welcome, welcome
    assert "appointment" not in welcome  # the voicemail message is for machines
    hello = bursts(capture.sent(), ULAW.decode, gap_s=1.0)
    assert len(hello) == 1
    # Decided on the silence after "Hello?": the person is not left waiting long.
    assert said[0].start - hello[0].end < 2.5, said[0].start - hello[0].end


async def test_an_inbound_call_is_not_screened(
    app: App, speech_models: SpeechModels, tmp_path: Path
) -> None:
    async with await Client.signup(app.api_url, "amd-inbound", "password1") as client:
        flow = await client.flows.create(
            "screened",
            [
                {"type": "detect_machine", "voicemail_message": VOICEMAIL_MESSAGE},
                {"type": "talk", "text": "Thank you for calling Acme Dental."},
            ],
        )
        hello = write_ulaw(
            await asyncio.to_thread(render, HELLO, speech_models.synthesizer), tmp_path
        )
        caller = SippCall(f"8{flow.id}", hello, hangup_after_s=15)
        capture = RtpCapture(caller.media_port)
        await capture.start()
        result = await caller.run()
        await capture.stop()
        (record,) = await client.calls.list()
        record = await final(client, record)

    assert result.ok, result.output + result.errors
    assert record.answered_by is None
    assert not any(line.role == "system" for line in record.transcript)
    said = bursts(capture.received(), ULAW.decode, gap_s=1.0)
    assert said
    assert "thank you for calling" in await transcribed(speech_models, said)


async def spoke(client: Client, call: Call) -> bool:
    return any(line.role == "agent" for line in (await client.calls.get(call.id)).transcript)


async def final(client: Client, call: Call) -> Call:
    """The call's record once it has ended."""
    async with asyncio.timeout(10):
        while (record := await client.calls.get(call.id)).status not in ("ended", "failed"):
            await asyncio.sleep(0.2)
    return record
