"""Fixed texts into a call: a runner at another rate than the port's is resampled, never
played at the wrong speed (a wideband port and the server's 8 kHz default voice)."""

from __future__ import annotations

import numpy as np
import pytest

from ari_offload.audio import SAMPLE_RATE, Pcm
from ari_offload.flows.speak import speak
from ari_offload.media.g711 import SLIN16, ULAW, Codec
from ari_offload.speech.tts import TtsRunner
from tests.unit.fake_media import FakeMediaPort


class Tone:
    """One 1 kHz tone of 100 ms per sentence, at the rate asked."""

    def synthesize_sentence(self, text: str, sample_rate: int = SAMPLE_RATE) -> Pcm:
        t = np.arange(sample_rate // 10) / sample_rate
        return (8000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)


@pytest.mark.parametrize(("codec", "runner_rate"), [(ULAW, 8000), (SLIN16, 16000), (SLIN16, 8000)])
async def test_what_is_played_lasts_as_long_as_it_was_spoken(
    codec: Codec, runner_rate: int
) -> None:
    port = FakeMediaPort(codec=codec)
    runner = TtsRunner(Tone(), workers=1, sample_rate=runner_rate)
    try:
        await speak(port, runner, "Hello.")
    finally:
        runner.close()
    seconds = port.heard_samples() / codec.sample_rate
    assert seconds == pytest.approx(0.1, abs=0.002)
    heard = np.concatenate(port.heard).astype(np.float64)
    peak = np.argmax(np.abs(np.fft.rfft(heard))) * codec.sample_rate / len(heard)
    assert peak == pytest.approx(1000, abs=15), "the right pitch: not sped up or slowed down"
