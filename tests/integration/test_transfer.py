"""The transfer action: back into the dialplan, or to an endpoint that answers (or not)."""

from __future__ import annotations

import asyncio

import pytest

from ari_offload.flows.actions import Action, Talk, Transfer
from ari_offload.flows.actions.transfer import TRANSFER_FAILED_TEXT
from ari_offload.flows.executor import FlowContext
from ari_offload.media.g711 import ULAW
from testbed.asterisk import Testbed
from testbed.audio import CACHE_DIR
from testbed.capture import RtpCapture, payload_bytes
from testbed.dialogue import Say, Silence, bursts, script_audio
from testbed.sipp import SippAnswerer, SippCall
from tests.integration.conftest import ServiceFactory, flow_of
from tests.integration.helpers import sounds_like, words

pytestmark = [pytest.mark.integration, pytest.mark.models]

CALLER_SPEECH = "Hello, is this the operator speaking?"


def caller_file(lead_s: float) -> tuple[SippCall, bytes]:
    audio = script_audio([Silence(lead_s), Say(CALLER_SPEECH), Silence(3.0)])
    path = CACHE_DIR / f"transfer-{lead_s}.ulaw"
    path.write_bytes(audio)
    return SippCall("8xfer", path, hangup_after_s=len(audio) / 8000 + 0.5), audio


@pytest.mark.parametrize("media_transport", ["rtp", "websocket"])
async def test_transfer_back_to_the_dialplan(
    start_service: ServiceFactory, flow_context: FlowContext, testbed: Testbed
) -> None:
    actions: list[Action] = [
        Talk("Transferring you now."),
        Transfer("operator"),  # the policy: context ari-offload-transfer, extension operator
    ]
    service = await start_service({"xfer": flow_of(actions, flow_context)})
    call, audio = caller_file(lead_s=3.0)
    capture = RtpCapture(call.media_port)
    await capture.start()
    await call.start()
    await asyncio.sleep(2.5)
    in_app_after_talk = dict(service.controller.calls)

    result = await call.wait()
    await capture.stop()

    assert result.ok, result.output + result.errors
    heard = bursts(capture.received(), ULAW.decode, gap_s=1.0)
    stt = flow_context.models.transcriber
    # Piper says it a little differently each time: tiny.en has heard "Thanks for bringing
    # you now", "Transferring new now" and "transfer in new now". Either half shows the
    # talk was played first.
    said = words(stt.transcribe(heard[0].pcm))
    assert "transfer" in said or said.endswith("you now"), said
    # After the transfer the dialplan's Echo() answers: the caller hears its own speech back.
    speech = audio[int(3.0 * 8000) :].rstrip(b"\xff")
    assert speech[:4000] in payload_bytes(capture.received())
    assert in_app_after_talk == {}, "the call left the app (our bridge and media are gone)"


@pytest.mark.parametrize("media_transport", ["rtp", "websocket"])
async def test_transfer_to_an_endpoint_that_answers(
    start_service: ServiceFactory, flow_context: FlowContext
) -> None:
    actions: list[Action] = [Talk("Connecting you."), Transfer("desk")]  # PJSIP/sipp-uas
    await start_service({"xfer": flow_of(actions, flow_context)})
    answerer = SippAnswerer()
    far_end = RtpCapture(answerer.media_port)
    await far_end.start()
    await answerer.start()
    call, audio = caller_file(lead_s=4.0)

    result = await call.run()
    answered = await answerer.wait(timeout=20)
    await far_end.stop()

    assert result.ok, result.output + result.errors
    assert answered.ok, answered.output + answered.errors  # it got the BYE when the caller left
    # The caller's words reach the transfer target untouched.
    speech = audio[int(4.0 * 8000) :].rstrip(b"\xff")
    assert speech[:4000] in payload_bytes(far_end.received())


async def test_transfer_to_an_endpoint_nobody_answers(
    start_service: ServiceFactory, flow_context: FlowContext
) -> None:
    # PJSIP/nobody has no contact (asterisk-conf/testbed/pjsip.conf): the dial fails.
    actions: list[Action] = [Transfer("nobody")]
    await start_service({"xfer": flow_of(actions, flow_context)})
    call, _ = caller_file(lead_s=1.0)
    call.hangup_after_s = 60
    capture = RtpCapture(call.media_port)
    await capture.start()

    result = await call.run()
    await capture.stop()

    assert result.ok, result.output + result.errors
    heard = bursts(capture.received(), ULAW.decode, gap_s=1.0)
    assert heard, "the caller heard nothing"
    said = flow_context.models.transcriber.transcribe(heard[-1].pcm)
    assert sounds_like(said, TRANSFER_FAILED_TEXT), said
