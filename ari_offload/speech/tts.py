"""Text to speech, engine-independent: the voice protocols, silence trimming, and a reply
streamed chunk by chunk off the loop. Engines live in their own files (piper.py); how a
reply is cut into chunks is reply_text.py.

The first chunk (a clause) is synthesized alone so its audio is ready as early as possible,
and each next chunk is synthesized while the caller hears the current one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterable
from typing import Any, Literal, Protocol

import numpy as np

from ari_offload.audio import SAMPLE_RATE, Pcm
from ari_offload.speech.reply_text import Chunk, StreamPlanner, plan_chunks
from ari_offload.speech.scheduler import JobKind, Scheduler
from ari_offload.tasks import cancel_and_wait

logger = logging.getLogger("ari_offload.speech")

DEFAULT_TTS_WORKERS = 2
# Piper's silence floor is about -80 dBFS and word ends fade through -40..-60 dBFS.
SILENCE_THRESHOLD = 100  # int16, about -50 dBFS
KEEP_SILENCE_MS = 20


def trim_silence(pcm: Pcm, rate: int = SAMPLE_RATE, keep_ms: int = KEEP_SILENCE_MS) -> Pcm:
    """Cut leading and trailing silence, keeping ``keep_ms`` on each side."""
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > SILENCE_THRESHOLD)
    if loud.size == 0:
        return pcm[:0]
    keep = rate * keep_ms // 1000
    return pcm[max(0, int(loud[0]) - keep) : int(loud[-1]) + 1 + keep]


class Synthesizer(Protocol):
    def synthesize_sentence(self, text: str, sample_rate: int = SAMPLE_RATE) -> Pcm:
        """Blocking: one sentence in, int16 speech at ``sample_rate`` out (the media port's:
        8 kHz, or 16 kHz on a wideband line), edges trimmed."""
        ...


class TtsVoice(Synthesizer, Protocol):
    """One named voice of a loaded TTS engine: what engines.py builds and doctor describes."""

    @property
    def name(self) -> str:
        """What an agent's ``voice`` names."""
        ...

    def warmup(self) -> None: ...

    def at_rate(self, rate: float) -> TtsVoice:
        """This voice speaking ``rate`` times as fast (an agent's ``speaking_rate``), over
        the same loaded model: nothing loads twice."""
        ...

    def describe(self) -> dict[str, Any]:
        """``engine`` (its registry name), ``summary`` (one line for doctor), and details."""
        ...


TtsKind = Literal[JobKind.FIRST_TTS, JobKind.LATER_TTS]


class TtsRunner:
    """Runs a Synthesizer on a ``Scheduler``'s workers and streams a reply chunk by chunk.

    The first chunk of a reply is queued as ``FIRST_TTS`` (a caller hears nothing until it
    is ready), the others as ``LATER_TTS`` (scheduler.py ranks them).
    """

    def __init__(
        self,
        synthesizer: Synthesizer,
        workers: int = DEFAULT_TTS_WORKERS,
        sentence_pause_ms: int | None = None,
        scheduler: Scheduler | None = None,
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        """``scheduler``: shared by every voice's runner and STT (its owner shuts it down);
        None: one of its own with ``workers`` workers. ``sentence_pause_ms``: one pause
        after every chunk instead of the plan's own. ``sample_rate``: of the audio it
        yields (a media port's)."""
        self.synthesizer = synthesizer
        self.sample_rate = sample_rate
        self._pause_ms = sentence_pause_ms
        self._own_scheduler = scheduler is None
        self.scheduler = scheduler or Scheduler(workers, name="tts")

    async def synthesize(self, sentence: str, owner: str = "") -> Pcm:
        return await self._submit(sentence, JobKind.FIRST_TTS, owner)

    def _submit(self, sentence: str, kind: TtsKind, owner: str) -> asyncio.Future[Pcm]:
        """Start now (not when a task gets scheduled): the next sentence must not wait."""
        job = self.scheduler.submit(
            kind, owner, self.synthesizer.synthesize_sentence, sentence, self.sample_rate
        )
        return asyncio.wrap_future(job)

    async def stream(self, text: str, owner: str = "") -> AsyncGenerator[tuple[str, Pcm], None]:
        """Yield (chunk text, pcm) in order (``reply_text.plan_chunks``); the next chunk is
        synthesized meanwhile.

        Every chunk but the last ends with its pause. Chunks that produce no audio are
        skipped. ``aclose()`` it once the reply is cut for good (after a barge-in's verdict:
        a false interruption goes on with it): the chunk being prepared is abandoned and no
        further one starts. ``owner``: the call id (scheduler fairness and its CPU counter).
        """
        chunks = plan_chunks(text)
        if not chunks:
            return
        pending = self._submit(chunks[0].speak, JobKind.FIRST_TTS, owner)
        try:
            for index, chunk in enumerate(chunks):
                pcm = await pending
                last = index + 1 == len(chunks)
                if not last:
                    pending = self._submit(chunks[index + 1].speak, JobKind.LATER_TTS, owner)
                if pcm.size:
                    yield chunk.text, pcm if last else np.concatenate([pcm, self._pause(chunk)])
        finally:
            pending.cancel()  # no-op once done
            if pending.done() and not pending.cancelled():
                pending.exception()  # retrieved, so an abandoned failure is not logged

    async def stream_pieces(
        self, pieces: AsyncIterable[str], owner: str = ""
    ) -> AsyncGenerator[tuple[str, Pcm], None]:
        """Like ``stream``, for a reply whose text arrives in pieces (a streamed webhook
        reply): each chunk is synthesized as soon as ``reply_text.StreamPlanner`` has it
        complete, while the text goes on arriving. ``aclose()`` also stops reading
        ``pieces`` (closing a webhook's stream cancels its request).

        A chunk yielded while more text may still come keeps its pause (a streamed reply
        can end in up to ``SENTENCE_PAUSE_MS`` of silence).
        """
        ready: asyncio.Queue[tuple[Chunk, asyncio.Future[Pcm]] | None] = asyncio.Queue()
        submitted: list[asyncio.Future[Pcm]] = []

        async def plan() -> None:
            planner = StreamPlanner()
            try:
                async for piece in pieces:
                    for chunk in planner.feed(piece):
                        submitted.append(self._submit(chunk.speak, _kind(submitted), owner))
                        ready.put_nowait((chunk, submitted[-1]))
                for chunk in planner.end():
                    submitted.append(self._submit(chunk.speak, _kind(submitted), owner))
                    ready.put_nowait((chunk, submitted[-1]))
            finally:
                ready.put_nowait(None)

        planning = asyncio.create_task(plan(), name="tts-plan")
        try:
            while (item := await ready.get()) is not None:
                chunk, job = item
                pcm = await job
                last = planning.done() and ready.qsize() == 1  # only the end mark left
                if pcm.size:
                    yield chunk.text, pcm if last else np.concatenate([pcm, self._pause(chunk)])
            await planning  # the source's own failure, if it had one
        finally:
            # The planner first (it may still submit), then every job it submitted; our own
            # cancellation (the call ending during this) goes on up (cancel_and_wait).
            await cancel_and_wait(planning)
            for job in submitted:
                job.cancel()  # no-op once done
                if job.done() and not job.cancelled():
                    job.exception()  # retrieved, so an abandoned failure is not logged

    def _pause(self, chunk: Chunk) -> Pcm:
        ms = chunk.pause_ms if self._pause_ms is None else self._pause_ms
        return np.zeros(self.sample_rate * ms // 1000, dtype=np.int16)

    def close(self) -> None:
        if self._own_scheduler:
            self.scheduler.shutdown()


def _kind(submitted: list[asyncio.Future[Pcm]]) -> TtsKind:
    return JobKind.LATER_TTS if submitted else JobKind.FIRST_TTS
