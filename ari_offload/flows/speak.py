"""Speak a fixed text into a call (the `talk` action, apologies, API `talk` outside ai_talk)."""

from __future__ import annotations

from ari_offload.media.udp import RtpEndpoint
from ari_offload.speech.tts import TtsRunner


async def speak(media: RtpEndpoint, tts: TtsRunner, text: str) -> None:
    """Queue each sentence as soon as it is synthesized; return when all of it was sent."""
    async for _sentence, pcm in tts.stream(text):
        media.enqueue(pcm)
    await media.drained()
