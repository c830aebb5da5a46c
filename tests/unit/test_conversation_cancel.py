"""A hangup while whisper runs must end the conversation, not be swallowed by it."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import numpy as np
import pytest

from ari_offload.speech.streaming import SegmentedStt
from ari_offload.speech.stt import Transcript


class SlowStt:
    def __init__(self) -> None:
        self.calls = 0

    async def transcribe(
        self, pcm: Any, language: str | None = None, owner: str = "", sample_rate: int = 8000
    ) -> Transcript:
        self.calls += 1
        await asyncio.sleep(3600)
        return Transcript("never", 0.0, 0.0)


def final(stt: SlowStt, speculative: asyncio.Future[Transcript]) -> asyncio.Task[Transcript]:
    """The utterance's final transcription, given the run started at its last pause."""
    adapter = SegmentedStt(cast(Any, stt))
    return asyncio.create_task(adapter._final(speculative, np.zeros(160, dtype=np.int16)))


async def test_cancelling_the_turn_during_speculative_stt_cancels_it() -> None:
    stt = SlowStt()
    speculative = asyncio.create_task(stt.transcribe(None))
    turn = final(stt, speculative)
    await asyncio.sleep(0.01)

    turn.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(turn, 1.0)
    assert stt.calls == 1, "no second transcription was started after the cancel"


async def test_a_cancelled_speculative_run_falls_back_to_a_fresh_transcription() -> None:
    stt = SlowStt()
    speculative = asyncio.create_task(stt.transcribe(None))
    await asyncio.sleep(0)
    speculative.cancel()
    turn = final(stt, speculative)
    await asyncio.sleep(0.01)

    assert stt.calls == 2, "the utterance was transcribed again"
    turn.cancel()
    with pytest.raises(asyncio.CancelledError):
        await turn
