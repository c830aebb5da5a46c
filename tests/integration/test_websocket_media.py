"""What only chan_websocket does, on real calls: a wideband (G.722) caller stays wideband up
to the app over slin16; the caller's keys come twice (ARI's ChannelDtmfReceived and the media
websocket's DTMF_END) and reach the call once each."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from ari_offload.ari.call import ActiveCall
from ari_offload.media.port import MediaFrame
from ari_offload.media.websocket import WebSocketPort
from testbed.audio import CACHE_DIR, speech_file
from testbed.sipp import SippCall
from testbed.wideband import g722_encode
from tests.integration.conftest import ServiceFactory

pytestmark = pytest.mark.integration


def level_db(pcm: np.ndarray, rate: int, hz: float) -> float:
    """The level of the ``hz`` component of ``pcm`` (dB, relative)."""
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64) * np.hanning(len(pcm))))
    band = spectrum[int((hz - 50) * len(pcm) / rate) : int((hz + 50) * len(pcm) / rate)]
    return 20 * float(np.log10(band.max() + 1e-9))


@pytest.mark.parametrize("media_transport", ["websocket/slin16"])
async def test_a_wideband_caller_stays_wideband_up_to_the_app(
    start_service: ServiceFactory,
) -> None:
    frames: list[MediaFrame] = []

    async def keep(call: ActiveCall) -> None:
        with call.media.tap() as heard:
            async for frame in heard:
                frames.append(frame)

    await start_service({"keep": keep})
    t = np.arange(3 * 16000) / 16000
    # 1 kHz is in every phone's band; 6 kHz only in a wideband one (G.722: up to 7 kHz).
    tones = 6000 * np.sin(2 * np.pi * 1000 * t) + 6000 * np.sin(2 * np.pi * 6000 * t)
    path = CACHE_DIR / "wideband-1k-6k.g722"
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    path.write_bytes(g722_encode(tones.astype(np.int16)))
    call = SippCall("8keep", path, hangup_after_s=3.5, codec="g722")

    result = await call.run()

    assert result.ok, result.output + result.errors
    assert {f.sample_rate for f in frames} == {16000}
    middle = np.concatenate([f.pcm for f in frames[len(frames) // 4 : 3 * len(frames) // 4]])
    low, high = level_db(middle, 16000, 1000), level_db(middle, 16000, 6000)
    assert abs(high - low) < 6, f"6 kHz at {high - low:+.1f} dB from 1 kHz: the band was cut"


class Keypad:
    """A call's conversation as far as keys go: it keeps them."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def inject(self, text: str) -> None:
        raise AssertionError("no text in this test")

    def digit(self, digit: str) -> None:
        self.keys.append(digit)


@pytest.mark.parametrize("media_transport", ["websocket"])
async def test_keys_reported_by_ari_and_the_media_websocket_reach_the_call_once(
    start_service: ServiceFactory,
) -> None:
    keypad = Keypad()
    calls: list[ActiveCall] = []

    async def listen(call: ActiveCall) -> None:
        calls.append(call)
        call.conversation = keypad
        await call.ended.wait()

    await start_service({"keys": listen})
    audio = speech_file("Pressing a key now.")
    call = SippCall("8keys", audio, hangup_after_s=5.0, dtmf=[(1.5, "5#")])

    result = await call.run()
    await asyncio.sleep(0.3)

    assert result.ok, result.output + result.errors
    (active,) = calls
    port = active.media
    assert isinstance(port, WebSocketPort)
    assert keypad.keys == ["5", "#"], "each press reached the call once"
    assert port.counters.keys == 2, "DTMF_END reported both on the media websocket"
    assert active.keys.repeats == 2, "and ARI did too: each twin was dropped"
