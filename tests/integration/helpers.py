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
