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


def sounds_like(said: str, line: str, *others: str, share: float = 0.6) -> bool:
    """Whisper's ``said`` is ``line``: most of its words (one misheard word of a short line,
    "you pressed five" as "you pressed by", must not fail a test), and more of them than of
    any of the ``others`` it could have been instead."""
    mine = share_of_words(line, said)
    return mine >= share and all(mine > share_of_words(other, said) for other in others)
