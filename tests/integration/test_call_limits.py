"""Limits on real calls: the loop guard (a call sent back into the app again and again) and
the max call duration."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest

from ari_offload.ari.call import ActiveCall
from ari_offload.ari.observer import NullObserver
from testbed.audio import silence_file, speech_file
from testbed.sipp import SippCall
from tests.integration.conftest import ServiceFactory

pytestmark = pytest.mark.integration


class Calls(NullObserver):
    def __init__(self, max_duration_s: float | None = None) -> None:
        self.started: list[ActiveCall] = []
        self.refused: list[ActiveCall] = []
        self.ended: list[ActiveCall] = []
        self.max_duration_s = max_duration_s

    async def call_started(self, call: ActiveCall) -> None:
        call.max_duration_s = self.max_duration_s  # where the tenant's quota would be applied
        self.started.append(call)

    async def call_refused(self, call: ActiveCall) -> None:
        self.refused.append(call)

    async def call_ended(self, call: ActiveCall) -> None:
        self.ended.append(call)


async def loop(call: ActiveCall) -> None:
    # ari-offload-transfer,loop leads straight back into the app, into this flow again.
    await call.transfer_to_dialplan("ari-offload-transfer", "loop")


def refusals(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "loop guard" in r.getMessage()]


async def test_a_call_transferred_back_into_the_app_twice_is_refused(
    start_service: ServiceFactory, caplog: pytest.LogCaptureFixture
) -> None:
    calls = Calls()
    await start_service({"loop": loop}, observer=calls)
    caller = SippCall("8loop", silence_file(30), hangup_after_s=30)

    result = await caller.run()  # ends when we hang up

    assert result.ok, result.output + result.errors
    # Run at depth 0, sent on (1), run again, sent on (2): refused, not answered again.
    assert [c.depth for c in calls.started] == [0, 1]
    assert [(c.depth, c.hangup_reason) for c in calls.refused] == [(2, "loop-guard")]
    assert len({c.channel_id for c in calls.started + calls.refused}) == 1
    [record] = refusals(caplog)
    assert record.levelno == logging.WARNING
    assert "2 times" in record.getMessage()


async def test_the_depth_is_inherited_through_an_originated_local_channel(
    start_service: ServiceFactory, caplog: pytest.LogCaptureFixture
) -> None:
    calls = Calls()
    held = asyncio.Event()

    async def hold(call: ActiveCall) -> None:
        held.set()
        with call.media.tap() as heard:
            async for _ in heard:
                pass

    async def loop_once_held(call: ActiveCall) -> None:
        await held.wait()  # our half is answered only once this one is: let it start first
        await loop(call)

    service = await start_service({"loop": loop_once_held, "hold": hold}, observer=calls)
    call_id = str(uuid.uuid4())

    # Our originate is the first hop; its Local/ far half enters the dialplan, then the app.
    await service.controller.originate(call_id, "Local/8loop@from-test", {"flow": "hold"})
    async with asyncio.timeout(15):
        while not calls.refused:  # the observer's lists: no single event covers them all
            await asyncio.sleep(0.1)
        while service.controller.calls:
            await asyncio.sleep(0.1)

    by_flow = {c.flow_ref: c for c in calls.started}
    assert sorted(by_flow) == ["hold", "loop"]
    assert by_flow["hold"].call_id == call_id
    assert by_flow["hold"].depth == 1
    assert by_flow["loop"].depth == 1  # inherited by the Local/ half from our originate
    assert [(c.depth, c.hangup_reason) for c in calls.refused] == [(2, "loop-guard")]
    assert len(refusals(caplog)) == 1


async def test_a_call_over_its_max_duration_is_hung_up(
    start_service: ServiceFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ari_offload")
    calls = Calls(max_duration_s=2.0)
    await start_service(observer=calls)
    caller = SippCall("7000", speech_file("Still here.", tail_silence_s=30), hangup_after_s=30)

    result = await caller.run()  # SIPp would hang up after 30 s; we do after 2

    assert result.ok, result.output + result.errors
    [call] = calls.ended
    assert call.hangup_reason == "max-duration"
    assert call.depth == 0  # a caller straight from a phone
    limit = [r for r in caplog.records if "max duration" in r.getMessage()]
    assert [r.levelno for r in limit] == [logging.INFO]
    assert call.answered_at is not None
    logging.getLogger(__name__).info(
        "max-duration call lasted %.1f s after answer", limit[0].created - call.answered_at
    )


async def test_without_a_max_duration_the_caller_decides(start_service: ServiceFactory) -> None:
    calls = Calls()
    await start_service(observer=calls)

    result = await SippCall("7000", speech_file("Short call."), hangup_after_s=3.0).run()

    assert result.ok, result.output + result.errors
    assert [c.hangup_reason for c in calls.ended] == ["caller"]
