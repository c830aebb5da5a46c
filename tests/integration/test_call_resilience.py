"""Many calls, restarts of Asterisk and of the controller: nothing leaks, calls keep working."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from ari_offload.ari.call import BRIDGE_PREFIX
from testbed.asterisk import TESTBED_ARI, Testbed
from testbed.audio import speech_file
from testbed.capture import RtpCapture, payload_bytes
from testbed.sipp import SippCall
from tests.integration.conftest import Recorder, ServiceFactory

pytestmark = pytest.mark.integration

SHORT_SPEECH = "One two three."
LEAD_SILENCE_BYTES = 4000


async def echo_call_works() -> bool:
    """One echo call whose caller hears its own speech back, byte for byte."""
    audio = speech_file(SHORT_SPEECH)
    call = SippCall("7000", audio, hangup_after_s=len(audio.read_bytes()) / 8000 + 1.5)
    capture = RtpCapture(call.media_port)
    await capture.start()
    result = await call.run()
    await capture.stop()
    heard = payload_bytes(capture.received())
    return result.ok and audio.read_bytes()[LEAD_SILENCE_BYTES:] in heard


async def test_a_dozen_sequential_calls_leave_nothing(
    start_service: ServiceFactory, testbed: Testbed
) -> None:
    recorder = Recorder()
    service = await start_service({"record": recorder})
    audio = speech_file(SHORT_SPEECH, lead_silence_s=0.1)

    for _ in range(12):  # the soak test runs forty more, four at a time
        result = await SippCall("8record", audio, hangup_after_s=1.2).run()
        assert result.ok, result.output + result.errors

    assert len(recorder.calls) == 12
    assert len({c.call_id for c in recorder.calls}) == 12
    channels, bridges = await testbed.wait_idle()
    assert (channels, bridges) == ([], [])
    assert service.controller.calls == {}


async def test_ten_concurrent_calls_leave_nothing(
    start_service: ServiceFactory, testbed: Testbed
) -> None:
    recorder = Recorder()
    service = await start_service({"record": recorder})
    audio = speech_file(SHORT_SPEECH)
    calls = [SippCall("8record", audio, hangup_after_s=4.0) for _ in range(10)]

    for call in calls:
        await call.start()
    results = await asyncio.gather(*(c.wait() for c in calls))

    assert all(r.ok for r in results), [r.errors for r in results if not r.ok]
    assert len(recorder.calls) == 10
    # Each call got the caller's whole speech on its own endpoint.
    for active in recorder.calls:
        assert audio.read_bytes()[LEAD_SILENCE_BYTES:] in recorder.audio_of(active)
    channels, bridges = await testbed.wait_idle()
    assert (channels, bridges) == ([], [])
    assert service.controller.calls == {}


async def test_controller_reconnects_after_asterisk_restart(
    start_service: ServiceFactory, testbed: Testbed
) -> None:
    service = await start_service()
    assert service.stream.connections == 1

    await testbed.restart()
    async with asyncio.timeout(30):
        # Polls on purpose: no single event covers "reconnected at least once since".
        while not (service.stream.connections >= 2 and service.stream.connected.is_set()):
            await asyncio.sleep(0.1)

    assert await echo_call_works()


async def test_calls_cut_by_an_asterisk_crash_are_cleaned_up(
    start_service: ServiceFactory, testbed: Testbed
) -> None:
    recorder = Recorder()
    service = await start_service({"record": recorder})
    call = SippCall("8record", speech_file(SHORT_SPEECH), hangup_after_s=20)
    await call.start()
    await asyncio.wait_for(recorder.started.wait(), 10)

    await testbed.crash()
    await testbed.start()
    async with asyncio.timeout(30):
        while service.controller.calls:
            await asyncio.sleep(0.1)
    await call.kill()

    assert recorder.calls[0].ended.is_set()
    assert recorder.calls[0].hangup_reason == "asterisk-restart"


async def test_restarted_controller_adopts_calls_left_in_the_app(
    start_service: ServiceFactory, testbed: Testbed
) -> None:
    # A real `ari-offload serve` takes the call, then dies by SIGKILL mid-call.
    env = {**os.environ, "ARI_OFFLOAD_ARI_PASSWORD": TESTBED_ARI.password}
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ari_offload.cli", "serve", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    audio = speech_file("I am still on the line after the controller restarted.")
    call = SippCall("7000", audio, hangup_after_s=10)
    try:
        async with asyncio.timeout(20):
            # Asterisk's state, seen from outside through its CLI: polling is the only way.
            while "ari-offload" not in await testbed.cli("ari show apps"):
                await asyncio.sleep(0.2)
        await call.start()
        async with asyncio.timeout(15):
            while not [b for b in await testbed.bridge_ids() if b.startswith(BRIDGE_PREFIX)]:
                await asyncio.sleep(0.1)
        old_bridges = await testbed.bridge_ids()
    finally:
        server.kill()
        await server.wait()

    adopted = Recorder()
    await start_service({"echo": adopted})  # the flow restarts under the new controller
    await asyncio.wait_for(adopted.started.wait(), 10)
    bridges_after_adoption = await testbed.bridge_ids()
    result = await call.wait()

    assert result.ok, result.output + result.errors
    assert len(adopted.calls) == 1, "the caller left in the app was adopted"
    # The call kept its id (so its record goes on); its old bridge was deleted and made anew
    # (a leftover bridge of that id would have made the new one fail).
    assert bridges_after_adoption == old_bridges == [BRIDGE_PREFIX + adopted.calls[0].call_id]
    assert len(adopted.audio) > 8000  # the adopted call's audio flows again
