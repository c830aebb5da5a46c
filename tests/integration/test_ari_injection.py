"""A SIP caller cannot reach into another call through the Stasis args (issue 7, item 3).

The dialplan hands the dialled extension to Stasis, and Asterisk splits app data on commas:
dialling ``8echo,call_id=<victim>`` used to make our call take the victim's id, so its
teardown deleted the victim's media channel and bridge.
"""

from __future__ import annotations

import asyncio

import pytest

from ari_offload.ari.call import BRIDGE_PREFIX, MEDIA_CHANNEL_PREFIX, ActiveCall
from ari_offload.ari.observer import NullObserver
from testbed.audio import speech_file
from testbed.capture import RtpCapture, payload_bytes
from testbed.sipp import SippCall
from tests.integration.conftest import ServiceFactory

pytestmark = pytest.mark.integration

VICTIM_LEAD_S = 8.0  # the victim speaks only after the attack is over


class StartedCalls(NullObserver):
    def __init__(self) -> None:
        self.calls: list[ActiveCall] = []

    async def call_started(self, call: ActiveCall) -> None:
        self.calls.append(call)


# "8": the shipped dialplan, which FILTER()s the extension; "6": a test-bed-only extension
# that passes it unfiltered, so the controller itself must ignore what the caller injects.
@pytest.mark.parametrize("prefix", ["8", "6"])
async def test_injected_call_id_leaves_another_live_call_untouched(
    start_service: ServiceFactory, prefix: str
) -> None:
    started = StartedCalls()
    service = await start_service(observer=started)
    victim_audio = speech_file("Still talking to the echo.", lead_silence_s=VICTIM_LEAD_S)
    victim_s = len(victim_audio.read_bytes()) / 8000 + 1.5  # the echo is 0.5 s late
    victim = SippCall("7000", victim_audio, hangup_after_s=victim_s)
    capture = RtpCapture(victim.media_port)
    await capture.start()
    await victim.start()
    async with asyncio.timeout(10):
        while not started.calls:  # the observer's list: no event to wait on
            await asyncio.sleep(0.1)
    victim_call = started.calls[0]
    victim_id = victim_call.call_id

    # The comma and '=' are legal in a SIP URI's user part; Asterisk's EXTEN keeps them.
    attacker = SippCall(f"{prefix}echo,call_id={victim_id}", speech_file("hi"), hangup_after_s=2.0)
    attacker_result = await attacker.run()
    channels = {c.id for c in await service.rest.list_channels()}
    bridges = {b.id for b in await service.rest.list_bridges()}
    victim_result = await victim.wait()
    await capture.stop()

    assert attacker_result.ok, attacker_result.output + attacker_result.errors
    assert len(started.calls) == 2, "the attacker's call was set up as a call of its own"
    attacker_call = started.calls[1]
    assert attacker_call.call_id != victim_id
    assert attacker_call.channel_id != victim_call.channel_id
    assert "call_id" not in attacker_call.args
    assert "," not in attacker_call.flow_ref
    assert "=" not in attacker_call.flow_ref
    # After the attacker hung up, everything of the victim's is still there ...
    assert victim_call.channel_id in channels
    assert MEDIA_CHANNEL_PREFIX + victim_id in channels
    assert BRIDGE_PREFIX + victim_id in bridges
    # ... and the victim's conversation goes on: it hears its later speech echoed.
    assert victim_result.ok, victim_result.output + victim_result.errors
    heard = payload_bytes(capture.received())
    assert victim_audio.read_bytes()[int(VICTIM_LEAD_S * 8000) :] in heard
    assert victim_call.hangup_reason == "caller"
