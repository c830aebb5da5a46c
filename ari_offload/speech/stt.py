"""Speech to text, engine-independent: the engine protocols and an off-loop runner.

One call's use of them (the speculative run at a pause, streaming engines) is streaming.py;
engines live in their own files (whisper.py) and are chosen by name in engines.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Literal, Protocol, overload

from ari_offload.audio import SAMPLE_RATE, Pcm
from ari_offload.speech.scheduler import JobKind, Scheduler

logger = logging.getLogger("ari_offload.speech")

DEFAULT_STT_WORKERS = 2


class Transcriber(Protocol):
    def transcribe(
        self, pcm: Pcm, language: str | None = None, sample_rate: int = SAMPLE_RATE
    ) -> str:
        """Blocking: int16 speech at ``sample_rate`` in (8 kHz, or 16 kHz from a wideband
        port), text out ("" for nothing heard).

        ``language`` is an agent's tag (e.g. "en", "en-US"); None: the engine's default.
        """
        ...


class SttEngine(Transcriber, Protocol):
    """A loaded STT engine: what engines.py builds by name and doctor describes."""

    @property
    def streaming(self) -> bool:
        """True: it takes audio as it comes; False: it needs whole (VAD-cut) utterances."""
        ...

    @property
    def languages(self) -> Sequence[str]:
        """The language codes an agent may choose (an "en-US" tag counts as "en")."""
        ...

    def warmup(self) -> None: ...

    def describe(self) -> dict[str, Any]:
        """``engine`` (its registry name), ``summary`` (one line for doctor), and details."""
        ...


@dataclass(frozen=True)
class Transcript:
    text: str
    seconds: float  # wall time from the request, including any wait for a free worker
    compute_seconds: float  # time inside the engine


SttKind = Literal[JobKind.FINAL_STT, JobKind.SPECULATIVE_STT]


class SttRunner:
    """Runs a Transcriber on a ``Scheduler``'s workers so the event loop never blocks.

    ``scheduler``: the one shared with TTS (models.py); None: a scheduler of its own with
    ``workers`` workers. Cancelling ``transcribe`` (or the future of ``submit``) before a
    worker picks the run up means it never runs; once started, the worker thread finishes
    the inference it began.
    """

    def __init__(
        self,
        transcriber: Transcriber,
        workers: int = DEFAULT_STT_WORKERS,
        clock: Callable[[], float] = time.perf_counter,
        scheduler: Scheduler | None = None,
    ) -> None:
        self.transcriber = transcriber
        self._clock = clock
        self._own_scheduler = scheduler is None
        self.scheduler = scheduler or Scheduler(workers, name="stt")

    async def transcribe(
        self,
        pcm: Pcm,
        language: str | None = None,
        owner: str = "",
        sample_rate: int = SAMPLE_RATE,
    ) -> Transcript:
        """A final run (the caller waits for it)."""
        job = self.submit(pcm, language, owner=owner, sample_rate=sample_rate)
        return await asyncio.wrap_future(job)

    @overload
    def submit(
        self,
        pcm: Pcm,
        language: str | None = None,
        *,
        kind: Literal[JobKind.FINAL_STT] = JobKind.FINAL_STT,
        owner: str = "",
        sample_rate: int = SAMPLE_RATE,
    ) -> Future[Transcript]: ...

    @overload
    def submit(
        self,
        pcm: Pcm,
        language: str | None = None,
        *,
        kind: SttKind,
        owner: str = "",
        sample_rate: int = SAMPLE_RATE,
    ) -> Future[Transcript] | None: ...

    def submit(
        self,
        pcm: Pcm,
        language: str | None = None,
        *,
        kind: SttKind = JobKind.FINAL_STT,
        owner: str = "",
        sample_rate: int = SAMPLE_RATE,
    ) -> Future[Transcript] | None:
        """Queue a run for call ``owner``; its future says whether a worker is on it.

        A speculative run is refused (None) when every worker has work: see scheduler.py.
        """
        requested = self._clock()
        return self.scheduler.submit(
            kind, owner, self._timed, pcm, language, sample_rate, requested
        )

    def _timed(
        self, pcm: Pcm, language: str | None, sample_rate: int, requested: float
    ) -> Transcript:
        started = self._clock()
        text = self.transcriber.transcribe(pcm, language, sample_rate)
        finished = self._clock()
        return Transcript(text, finished - requested, finished - started)

    def close(self) -> None:
        if self._own_scheduler:
            self.scheduler.shutdown()
