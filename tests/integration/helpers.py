"""Small helpers the integration tests share."""

from __future__ import annotations

import asyncio
import re

from ari_offload.speech.models import SpeechModels
from testbed.dialogue import Burst


def words(text: str) -> str:
    """Whisper's text as plain lower-case words, for robust `in` checks."""
    return " ".join(re.findall(r"[a-z]+", text.lower()))


async def heard(models: SpeechModels, burst: Burst) -> str:
    """Whisper's words for what the caller heard (in a thread: the loop must not block)."""
    return words(await asyncio.to_thread(models.transcriber.transcribe, burst.pcm))


def share_of_words(expected: str, said: str) -> float:
    """The share of ``expected``'s words that whisper heard in ``said`` (whisper mishears a
    word of a TTS voice now and then: "let me" as "love me"; a share judges the sentence)."""
    want = words(expected).split()
    return sum(w in words(said).split() for w in want) / len(want)
