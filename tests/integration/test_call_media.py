"""Real calls through the test-bed Asterisk: audio both ways, byte-exact, and clean hangups."""

from __future__ import annotations

import asyncio
import socket

import pytest

from ari_offload.ari.call import ActiveCall
from ari_offload.media.udp import RtpEndpoint
from testbed.audio import speech_file
from testbed.capture import RtpCapture, payload_bytes
from testbed.sipp import SippCall
from tests.integration.conftest import Recorder, ServiceFactory

# G.711 byte for byte over both transports (slin16 would be transcoded: not byte-exact)
over_both = pytest.mark.parametrize("media_transport", ["rtp", "websocket"])

pytestmark = pytest.mark.integration

LEAD_SILENCE_BYTES = 4000  # speech_file's 0.5 s of leading silence at 8000 bytes/s


def speech(text: str = "Hello, this is a test call to check the audio path.") -> bytes:
    return speech_file(text).read_bytes()


@over_both
async def test_caller_audio_reaches_app_byte_exact(start_service: ServiceFactory) -> None:
    recorder = Recorder()
    await start_service({"record": recorder})
    audio = speech_file("I need to reset my password, please.")
    call = SippCall("8record", audio, hangup_after_s=len(audio.read_bytes()) / 8000 + 1.0)

    result = await call.run()

    assert result.ok, result.output + result.errors
    assert len(recorder.calls) == 1
    # Every byte of speech arrived in order, untouched (the lead silence may start late).
    assert audio.read_bytes()[LEAD_SILENCE_BYTES:] in recorder.audio
    assert recorder.calls[0].hangup_reason == "caller"


@over_both
async def test_app_audio_reaches_caller_byte_exact(start_service: ServiceFactory) -> None:
    prompt = speech("Thank you for calling. This is what the app says to you.")

    async def play(call: ActiveCall) -> None:
        call.media.play_payload(prompt)
        await call.media.drained()
        await asyncio.sleep(0.3)  # the last packets cross Asterisk before the BYE
        await call.hangup()  # the app hangs up this time

    await start_service({"play": play})
    call = SippCall("8play", speech_file("hi", lead_silence_s=0.1), hangup_after_s=30)
    capture = RtpCapture(call.media_port)
    await capture.start()

    result = await call.run()
    await capture.stop()

    assert result.ok, result.output + result.errors
    heard = payload_bytes(capture.received())
    assert prompt[LEAD_SILENCE_BYTES:] in heard


@over_both
async def test_echo_flow_caller_hears_itself(start_service: ServiceFactory) -> None:
    await start_service()
    audio = speech_file("Testing the echo extension, one two three.")
    call = SippCall("7000", audio, hangup_after_s=len(audio.read_bytes()) / 8000 + 1.5)
    capture = RtpCapture(call.media_port)
    await capture.start()

    result = await call.run()
    await capture.stop()

    assert result.ok, result.output + result.errors
    heard = payload_bytes(capture.received())
    assert audio.read_bytes()[LEAD_SILENCE_BYTES:] in heard
    # The echo starts about half a second after the caller's first packet.
    first_sent = capture.sent()[0].time
    first_echo = next(p.time for p in capture.received() if p.packet.payload.strip(b"\xff"))
    assert 0.4 < first_echo - first_sent < 2.0


async def test_garbage_from_another_source_is_ignored(start_service: ServiceFactory) -> None:
    recorder = Recorder()
    await start_service({"record": recorder})
    audio = speech_file("The call goes on while someone throws garbage at the media port.")
    call = SippCall("8record", audio, hangup_after_s=len(audio.read_bytes()) / 8000 + 1.0)
    await call.start()
    await asyncio.wait_for(recorder.started.wait(), 10)
    media = recorder.calls[0].media
    assert isinstance(media, RtpEndpoint)  # the test bed's transport: it has an address

    attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i in range(200):
            attacker.sendto(bytes([0x80, 0, i, i]) * 43, media.local_address)
            attacker.sendto(b"\x00garbage", media.local_address)
            await asyncio.sleep(0.005)
    finally:
        attacker.close()
    result = await call.wait()

    assert result.ok, result.output + result.errors
    assert media.stats.dropped["foreign"] >= 400
    assert audio.read_bytes()[LEAD_SILENCE_BYTES:] in recorder.audio


async def test_digest_authenticated_caller_reaches_the_app(start_service: ServiceFactory) -> None:
    recorder = Recorder()
    await start_service({"record": recorder})
    audio = speech_file("Alice calling, with a password.")
    call = SippCall(
        "8record", audio, hangup_after_s=len(audio.read_bytes()) / 8000 + 1.0,
        auth=("alice", "alice-secret"),
    )  # fmt: skip

    result = await call.run()

    assert result.ok, result.output + result.errors
    assert recorder.calls[0].channel.name.startswith("PJSIP/alice-")
    assert audio.read_bytes()[LEAD_SILENCE_BYTES:] in recorder.audio


async def test_a_wrong_digest_password_never_reaches_the_app(
    start_service: ServiceFactory,
) -> None:
    recorder = Recorder()
    await start_service({"record": recorder})
    call = SippCall("8record", speech_file("hi"), hangup_after_s=2, auth=("alice", "wrong"))

    result = await call.run()

    assert not result.ok
    # Asterisk challenged the second INVITE too (the scenario's rejected branch), rather
    # than the call failing for some other reason.
    assert "receive timeout" in result.errors, result.errors
    assert recorder.calls == []
