"""Speak a fixed text into a call (the `talk` action, apologies, API `talk` outside ai_talk)."""

from __future__ import annotations

from ari_offload.audio import resample
from ari_offload.media.port import MediaPort
from ari_offload.speech.tts import TtsRunner


async def speak(media: MediaPort, tts: TtsRunner, text: str) -> None:
    """Queue each sentence as soon as it is synthesized; return when all of it was played.

    A runner at another rate than the port's (a wideband port's fixed texts from the 8 kHz
    default runner) is resampled, never played at the wrong speed.
    """
    rate = media.codec.sample_rate
    async for _sentence, pcm in tts.stream(text):
        media.play(pcm if tts.sample_rate == rate else resample(pcm, tts.sample_rate, rate))
    await media.drained()
