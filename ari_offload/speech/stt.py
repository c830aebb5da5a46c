"""Speech to text, engine-independent: the engine protocols and an off-loop runner.

One call's use of them (the speculative run at a pause, streaming engines) is streaming.py;
engines live in their own files (whisper.py) and are chosen by name in engines.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

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
