"""What a conversation asks of STT, and the adapter that gives a batch engine that shape.

A conversation hands STT the VAD's segments as they happen — ``speculate(audio)`` at a pause,
``cancel_speculation()`` when speech resumes, ``utterance_ended(audio)`` at the endpoint — and
awaits one transcript per utterance. A streaming engine would follow the audio itself and
answer at the endpoint from what it already has; a batch engine (whisper re-reads the whole
utterance every time) gets ``SegmentedStt``: a run started at the pause is the final one when
the caller said nothing more, so the endpoint silence hides the STT time.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Future
from typing import Protocol, cast

import numpy as np

from ari_offload.audio import SAMPLE_RATE, Pcm
from ari_offload.speech.scheduler import JobKind
from ari_offload.speech.stt import SttEngine, SttRunner, Transcript

logger = logging.getLogger("ari_offload.speech")


class UtteranceStt(Protocol):
    """One call's STT, fed the caller's frames and the VAD's segments; streaming or batch."""

    def feed(self, pcm: Pcm) -> None:
        """Every caller frame, as heard (a streaming engine decodes as it goes)."""
        ...

    def speculate(self, audio: Pcm) -> None:
        """The caller paused after ``audio``: a transcript of it may be the final one."""
        ...

    def cancel_speculation(self) -> None:
        """Speech resumed: what ``speculate`` got is not the utterance any more."""
        ...

    def utterance_ended(self, audio: Pcm) -> asyncio.Task[Transcript]:
        """The utterance ended with ``audio``: its transcript, on its way from now on."""
        ...

    def speculation(self, audio: Pcm) -> asyncio.Future[Transcript] | None:
        """The transcript of exactly ``audio`` (last ``speculate``d), if one is on its way
        (the turn-end gate reads it; None when the engine keeps none)."""
        ...

    def close(self) -> None:
        """The call is over: drop any work nobody will read."""
        ...


class SpeculativeStt:
    """One call's speculative transcription (started at a pause): one at most, queued or running.

    Whisper cannot be stopped mid-inference, so a run the caller talked over keeps its worker
    until it ends. A pause while it does defers its run: the latest such pause's audio is
    submitted the moment the busy run ends (if speech has not resumed since), so a caller who
    paused between two words just before the end of their sentence still has their words
    ready soon after the endpoint, and one call never has two runs computing. A run dropped
    before a worker took it never runs. A pause while the workers are all taken starts
    nothing (the scheduler refuses speculative work then: it would only delay other calls'
    final runs).
    """

    def __init__(
        self,
        runner: SttRunner,
        language: str | None = None,
        owner: str = "",
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        self._runner = runner
        self._language = language  # the agent's
        self._owner = owner  # the call id, for the scheduler's fairness and CPU counter
        self._rate = sample_rate  # of the call's audio (its media port's)
        self._future: Future[Transcript] | None = None
        self._audio: Pcm | None = None  # what the run hears; None once speech resumed
        self._deferred: Pcm | None = None  # a pause's audio waiting for the busy run to end
        self._loop: asyncio.AbstractEventLoop | None = None
        self.started = 0  # runs submitted for this call

    @property
    def busy(self) -> bool:
        """A run is queued or computing (its result may already be stale)."""
        return self._future is not None and not self._future.done()

    def pause(self, audio: Pcm) -> None:
        """The caller paused: transcribe ``audio`` now, or as soon as the busy run ends."""
        if self.busy:
            logger.debug("speculative STT busy: this pause's run waits for it")
            self._deferred = audio
            self._audio = None  # the busy run is not this audio's
            return
        self._deferred = None
        self._loop = asyncio.get_running_loop()
        future = self._runner.submit(
            audio, self._language, kind=JobKind.SPECULATIVE_STT, owner=self._owner,
            sample_rate=self._rate,
        )  # fmt: skip
        if future is None:
            logger.debug("speech workers saturated: no speculative STT at this pause")
            self._future = self._audio = None
            return
        self._future = future
        self._audio = audio
        self.started += 1
        future.add_done_callback(self._ended_in_worker)

    def _ended_in_worker(self, future: Future[Transcript]) -> None:
        loop = self._loop
        if self._deferred is not None and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._start_deferred, future)

    def _start_deferred(self, ended: Future[Transcript]) -> None:
        if self._future is ended and self._deferred is not None:
            self.pause(self._deferred)

    def resume(self) -> None:
        """Speech resumed: the run is stale; dropped if no worker has taken it yet."""
        self.drop()

    def drop(self) -> None:
        if self._future is not None and self._future.cancel():
            self._future = None  # never started: it holds no worker
        self._audio = self._deferred = None

    def peek(self, audio: Pcm) -> asyncio.Future[Transcript] | None:
        """The transcript of the run that hears exactly ``audio``, without taking it."""
        if self._future is None or self._audio is None or not np.array_equal(self._audio, audio):
            return None
        return asyncio.wrap_future(self._future)

    def take(self, audio: Pcm) -> asyncio.Future[Transcript] | None:
        """At the endpoint: the run that hears exactly ``audio``, if there is one.

        A stale run is not waited for (the final audio differs); it stays tracked, so no new
        speculative run starts until it ends. A deferred run is not started any more: the
        final run (which outranks every guess) hears that audio now.
        """
        self._deferred = None
        if self._future is None or self._audio is None or not np.array_equal(self._audio, audio):
            return None
        future, self._future, self._audio = self._future, None, None
        return asyncio.wrap_future(future)


class StreamingSttEngine(SttEngine, Protocol):
    """An engine with ``streaming = True`` opens its own ``UtteranceStt`` per call, fed audio
    at ``sample_rate``."""

    def open_stream(
        self, runner: SttRunner, language: str | None, sample_rate: int
    ) -> UtteranceStt: ...


def utterance_stt(
    runner: SttRunner,
    language: str | None = None,
    owner: str = "",
    sample_rate: int = SAMPLE_RATE,
) -> UtteranceStt:
    """One call's STT: a streaming engine's own stream; for a batch one, the adapter.

    ``owner``: the call id, whose runs the scheduler keeps fair against other calls'.
    ``sample_rate``: the call's audio's (its media port's).
    """
    engine = runner.transcriber
    if getattr(engine, "streaming", False):
        return cast(StreamingSttEngine, engine).open_stream(runner, language, sample_rate)
    return SegmentedStt(runner, language, owner, sample_rate)


class SegmentedStt:
    """``UtteranceStt`` over a batch engine: speculative runs at pauses, a fresh run if stale.

    The audio itself reaches it through the VAD's segments, so ``feed`` has nothing to do.
    """

    def __init__(
        self,
        runner: SttRunner,
        language: str | None = None,
        owner: str = "",
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        self._runner = runner
        self._language = language
        self._owner = owner
        self._rate = sample_rate
        self.runs = SpeculativeStt(runner, language, owner, sample_rate)

    def feed(self, pcm: Pcm) -> None:
        pass

    def speculate(self, audio: Pcm) -> None:
        self.runs.pause(audio)

    def cancel_speculation(self) -> None:
        self.runs.resume()

    def speculation(self, audio: Pcm) -> asyncio.Future[Transcript] | None:
        return self.runs.peek(audio)

    def utterance_ended(self, audio: Pcm) -> asyncio.Task[Transcript]:
        # Taken now, at the endpoint: the next pause must not find this run still tracked.
        speculative = self.runs.take(audio)
        return asyncio.create_task(self._final(speculative, audio), name="stt-final")

    async def _final(
        self, speculative: asyncio.Future[Transcript] | None, audio: Pcm
    ) -> Transcript:
        if speculative is not None:
            try:
                return await speculative
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # the call is ending: never swallow our own cancellation
                # only the speculative run was cancelled: transcribe the utterance afresh
        return await self._runner.transcribe(audio, self._language, self._owner, self._rate)

    def close(self) -> None:
        self.runs.drop()
