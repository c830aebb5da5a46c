"""Speech to text, engine-independent: the engine protocols, an off-loop runner, and the
speculative run at a pause. Engines live in their own files (whisper.py) and are chosen by
name in engines.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ari_offload.audio import Pcm

logger = logging.getLogger("ari_offload.speech")

DEFAULT_STT_WORKERS = 2


class Transcriber(Protocol):
    def transcribe(self, pcm8k: Pcm, language: str | None = None) -> str:
        """Blocking: 8 kHz int16 speech in, text out ("" for nothing heard).

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


class SttRunner:
    """Runs a Transcriber in its own thread pool so the event loop never blocks.

    Cancelling ``transcribe`` (or the future of ``submit``) before a worker picks the run up
    means it never runs; once started, the worker thread finishes the inference it began.
    """

    def __init__(
        self,
        transcriber: Transcriber,
        workers: int = DEFAULT_STT_WORKERS,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.transcriber = transcriber
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stt")

    async def transcribe(self, pcm8k: Pcm, language: str | None = None) -> Transcript:
        return await asyncio.wrap_future(self.submit(pcm8k, language))

    def submit(self, pcm8k: Pcm, language: str | None = None) -> Future[Transcript]:
        """Queue a run; its future says whether a worker is on it (``running``, ``done``)."""
        return self._executor.submit(self._timed, pcm8k, language, self._clock())

    def _timed(self, pcm8k: Pcm, language: str | None, requested: float) -> Transcript:
        started = self._clock()
        text = self.transcriber.transcribe(pcm8k, language)
        finished = self._clock()
        return Transcript(text, finished - requested, finished - started)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class SpeculativeStt:
    """One call's speculative transcription (started at a pause): one at most, queued or running.

    Whisper cannot be stopped mid-inference, so a run the caller talked over keeps its worker
    until it ends. While it does, a new pause starts nothing: a caller talking in short bursts
    would otherwise keep every worker busy with runs nobody reads. The first pause after it
    ends starts afresh. A run dropped before a worker took it never runs.
    """

    def __init__(self, runner: SttRunner, language: str | None = None) -> None:
        self._runner = runner
        self._language = language  # the agent's
        self._future: Future[Transcript] | None = None
        self._audio: Pcm | None = None  # what the run hears; None once speech resumed
        self.started = 0  # runs submitted for this call

    @property
    def busy(self) -> bool:
        """A run is queued or computing (its result may already be stale)."""
        return self._future is not None and not self._future.done()

    def pause(self, audio: Pcm) -> None:
        """The caller paused: transcribe ``audio`` now, unless the last run is still busy."""
        if self.busy:
            logger.debug("speculative STT still busy: none started at this pause")
            return
        self._future = self._runner.submit(audio, self._language)
        self._audio = audio
        self.started += 1

    def resume(self) -> None:
        """Speech resumed: the run is stale; dropped if no worker has taken it yet."""
        self.drop()

    def drop(self) -> None:
        if self._future is not None and self._future.cancel():
            self._future = None  # never started: it holds no worker
        self._audio = None

    def take(self, audio: Pcm) -> asyncio.Future[Transcript] | None:
        """At the endpoint: the run that hears exactly ``audio``, if there is one.

        A stale run is not waited for (the final audio differs); it stays tracked, so no new
        speculative run starts until it ends.
        """
        if self._future is None or self._audio is None or not np.array_equal(self._audio, audio):
            return None
        future, self._future, self._audio = self._future, None, None
        return asyncio.wrap_future(future)
