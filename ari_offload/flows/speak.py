"""Speak a fixed text into a call (the `talk` action, apologies, API `talk` outside ai_talk).

A runner at another rate than the port's (a wideband port's fixed texts from the 8 kHz
default runner) is resampled, never played at the wrong speed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ari_offload.audio import Pcm, resample
from ari_offload.media.port import MediaPort
from ari_offload.speech.tts import TtsRunner
from ari_offload.tasks import cancel_and_wait


async def speak(media: MediaPort, tts: TtsRunner, text: str) -> None:
    """Queue each sentence as soon as it is synthesized; return when all of it was played."""
    async for _sentence, pcm in tts.stream(text):
        media.play(_at_port_rate(media, tts, pcm))
    await media.drained()


class Prepared:
    """A text synthesized in the background from now on, played whole at a cue (a voicemail
    message waiting for the beep: it starts the moment the beep ends, not a synthesis later).
    """

    def __init__(self, media: MediaPort, tts: TtsRunner, text: str, owner: str = "") -> None:
        self._media = media
        self._tts = tts
        self._audio = asyncio.ensure_future(_synthesize(tts, text, owner))

    async def play(self) -> None:
        """Play it (waiting for what is not synthesized yet); return once it was played."""
        for pcm in await asyncio.shield(self._audio):
            self._media.play(_at_port_rate(self._media, self._tts, pcm))
        await self._media.drained()

    async def __aenter__(self) -> Prepared:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await cancel_and_wait(self._audio)  # no-op once done


async def _synthesize(tts: TtsRunner, text: str, owner: str) -> list[Pcm]:
    return [pcm async for _sentence, pcm in tts.stream(text, owner)]


def _at_port_rate(media: MediaPort, tts: TtsRunner, pcm: Pcm) -> Pcm:
    rate = media.codec.sample_rate
    return pcm if tts.sample_rate == rate else resample(pcm, tts.sample_rate, rate)
