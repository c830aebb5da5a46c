"""TtsRunner.stream_pieces: a reply whose text arrives in pieces is spoken as it arrives."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np

from ari_offload.audio import SAMPLE_RATE, Pcm
from ari_offload.speech.reply_text import CLAUSE_PAUSE_MS
from ari_offload.speech.tts import TtsRunner


class WordVoice:
    """100 samples of tone per word: what was said can be counted back from the audio."""

    def __init__(self) -> None:
        self.said: list[str] = []

    def synthesize_sentence(self, text: str, sample_rate: int = SAMPLE_RATE) -> Pcm:
        self.said.append(text)
        return np.full(100 * len(text.split()), 1000, dtype=np.int16)


async def test_the_first_clause_plays_while_the_agent_is_still_writing() -> None:
    voice = WordVoice()
    runner = TtsRunner(voice, workers=1)
    rest = asyncio.Event()
    received: list[str] = []

    async def agent() -> AsyncIterator[str]:
        for piece in ["You said: ", "I need to reset ", "my password. "]:
            received.append(piece)
            yield piece
        await rest.wait()  # the LLM is slow after its first sentence
        received.append("How else can I help?")
        yield "How else can I help?"

    stream = runner.stream_pieces(agent())
    try:
        first, pcm = await anext(stream)
        assert first == "You said:"
        assert "How else can I help?" not in received  # said before the agent wrote it
        # more text may follow: the clause keeps the pause a speaker leaves after it
        assert pcm.size == 200 + SAMPLE_RATE * CLAUSE_PAUSE_MS // 1000
        second, _ = await anext(stream)
        assert second == "I need to reset my password."
        rest.set()
        last, pcm = await anext(stream)
        assert last == "How else can I help?"
        assert pcm.size == 500  # the reply's end: no pause after it
        assert [chunk async for chunk in stream] == []
    finally:
        await stream.aclose()
        runner.close()
    assert voice.said == ["You said:", "I need to reset my password.", "How else can I help?"]


async def test_closing_the_stream_stops_reading_the_agent() -> None:
    runner = TtsRunner(WordVoice(), workers=1)
    closed = asyncio.Event()

    async def agent() -> AsyncIterator[str]:
        try:
            yield "Sure, "
            await asyncio.sleep(30)  # never sends more
            yield "too late."
        finally:
            closed.set()

    stream = runner.stream_pieces(agent())
    try:
        first, _ = await anext(stream)
        assert first == "Sure,"
    finally:
        await stream.aclose()  # a barge-in
        runner.close()
    assert closed.is_set()
