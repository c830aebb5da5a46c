"""The shell around a ``TurnEndGate``: at a pause, ask the turn-end model (off the loop) and
read the speculative transcript of the same audio; if both say the caller is done and the
caller is still quiet, end the utterance now instead of at the VAD's long endpoint.

Kept out of ``conversation.py``: the conversation only forwards VAD events and frames here,
and takes the early end as if the VAD had reached its endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Protocol

from ari_offload.audio import Pcm
from ari_offload.speech.streaming import UtteranceStt
from ari_offload.speech.turn_end import TurnEndGate
from ari_offload.speech.vad import VadEvent, VadSegmenter

log = logging.getLogger("ari_offload.conversation")


class TurnEndModel(Protocol):
    async def turn_probability(self, audio: Pcm, sample_rate: int) -> float: ...


class TurnEndWatch:
    def __init__(
        self,
        gate: TurnEndGate,
        segmenter: VadSegmenter,
        stt: UtteranceStt,
        model: TurnEndModel,
        call_id: str,
        ended: Callable[[VadEvent, float], None],
    ) -> None:
        """``ended(event, now)``: the early end, passed on as the VAD's own would be."""
        self._gate = gate
        self._segmenter = segmenter
        self._stt = stt
        self._model = model
        self._call_id = call_id
        self._ended = ended
        self._judging: set[asyncio.Task[None]] = set()  # questions in flight

    def vad(self, event: VadEvent) -> None:
        self._gate.vad(event)

    def frame(self) -> None:
        """After each caller frame: ask the model if the gate says this pause is the moment."""
        audio = self._gate.frame(self._segmenter.silence_ms)
        if audio is None:
            return
        task = asyncio.create_task(self._judge(self._gate.pause, audio), name="turn-end")
        self._judging.add(task)
        task.add_done_callback(self._judging.discard)

    async def _judge(self, pause: int, audio: Pcm) -> None:
        gate = self._gate
        try:
            rate = self._segmenter.params.sample_rate  # the call's audio's
            probability = await self._model.turn_probability(audio, rate)
            text = None
            speculation = self._stt.speculation(audio) if probability >= gate.threshold else None
            if speculation is not None:
                with contextlib.suppress(asyncio.CancelledError):  # speech resumed: stale
                    text = (await speculation).text
        except Exception:  # a failed question only costs the early end
            log.exception("call %s: turn-end model failed", self._call_id)
            return
        log.debug("call %s: turn end p=%.2f text=%r", self._call_id, probability, text)
        if gate.finished(pause, probability, text):
            event = self._segmenter.end_now()
            if event is not None:
                self._ended(event, time.monotonic())

    @property
    def judging(self) -> tuple[asyncio.Task[None], ...]:
        """The questions in flight (the conversation cancels them when it ends)."""
        return tuple(self._judging)
