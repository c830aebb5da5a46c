"""Speak a fixed text into a call (the `talk` action, apologies, API `talk` outside ai_talk)."""

from __future__ import annotations

from ari_offload.media.port import MediaPort
from ari_offload.speech.tts import TtsRunner


async def speak(media: MediaPort, tts: TtsRunner, text: str) -> None:
    """Queue each sentence as soon as it is synthesized; return when all of it was played."""
    async for _sentence, pcm in tts.stream(text):
        media.play(pcm)
    await media.drained()
