"""The async shell of answering-machine detection: a call's inbound audio -> MachineDetector.

A two-party bridge forwards RTP only while the far end sends it, and a phone or a machine
may send none while it is quiet (silence suppression): a stretch with no frames is fed to the
detector as the silence it is, counted on the clock, or a person who said "Hello?" and then
sent nothing would never be decided.

With a transcriber, a verdict on a greeting long enough to hold a phrase (not a beep's) is
checked against its words (greeting_words.py): they overrule the timing. Shorter ones
("Hello?") are not transcribed: a person waits for no whisper run. Whisper starts at the
greeting's first pause of SPECULATE_QUIET_MS (its run, ~0.7-1 s here, overlaps the silence
that decides a person) and again if the greeting goes on; the verdict takes the run of
the whole greeting. A person still speaking
when they are decided is let finish (up to FINISH_MAX_S) before the flow speaks to them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from ari_offload.audio import FRAME_S, FRAME_SAMPLES, SAMPLE_RATE, Halver, Pcm, silence
from ari_offload.media.port import FrameTap, MediaFrame, MediaPort
from ari_offload.tasks import cancel_and_wait
from ari_offload.voice.greeting_words import check_words, words_worth
from ari_offload.voice.machine_detect import AnsweredBy, MachineDetector, MessageCue, Verdict

log = logging.getLogger("ari_offload.conversation")

# No frame for this long: the far end sends nothing, the gap is silence. Longer than jitter.
GAP_S = 0.1
SPECULATE_QUIET_MS = 300
FINISH_QUIET_MS = 400  # a person decided mid-sentence: this much silence, and we speak
FINISH_MAX_S = 4.0

Transcribe = Callable[[Pcm], Awaitable[str]]


class MachineListener:
    """Listens to a call from its creation on; ``verdict()``, then ``cue()`` for a machine.

    Both return None if the call's audio ends first (the far end hung up). ``close()`` (or
    ``with``) stops listening.
    """

    def __init__(
        self,
        media: MediaPort,
        detector: MachineDetector,
        clock: Callable[[], float] = time.monotonic,
        transcribe: Transcribe | None = None,
    ) -> None:
        self.detector = detector
        self._transcribe = transcribe
        self._clock = clock
        self._tap: FrameTap = media.tap()  # opened now: the greeting is heard from here
        self._halver = Halver()  # a wideband port's frames to the detector's 8 kHz
        self._frames: AsyncIterator[MediaFrame] = aiter(self._tap)
        self._next: asyncio.Future[MediaFrame] | None = None
        self._heard_until = clock()  # the clock time up to which audio was fed
        self._ended = False
        # (where the greeting ended, its transcription): started at a pause of the greeting
        self._words: tuple[int, asyncio.Future[str]] | None = None

    async def verdict(self) -> Verdict | None:
        while self.detector.verdict is None and await self._step():
            self._transcribe_at_pause()
        verdict = self.detector.verdict
        if verdict is None or self.detector.cue is not None:  # no audio, or a beep: settled
            return verdict
        if words_worth(self.detector):
            text = await self._greeting_words()  # frames queue in the tap meanwhile
            if text is not None:
                verdict = check_words(self.detector, text)
                log.debug("greeting %r: %s", text, verdict)
        if verdict.answered_by == AnsweredBy.HUMAN:
            await self._let_finish()
        return verdict

    def _transcribe_at_pause(self) -> None:
        d = self.detector
        if d.quiet_ms >= SPECULATE_QUIET_MS and words_worth(d):
            self._transcribe_greeting()

    async def _greeting_words(self) -> str | None:
        """The words of the whole greeting heard so far: the run started at its last pause,
        or a new one."""
        run = self._transcribe_greeting()
        if run is None:
            return None
        try:
            return await run
        except Exception as exc:  # the timing's verdict stands; the call goes on
            log.warning("the greeting's words are unknown (%s); going by its timing", exc)
            return None

    def _transcribe_greeting(self) -> asyncio.Future[str] | None:
        """A transcription of the greeting as it is now: running already, or started."""
        if self._transcribe is None:
            return None
        end = self.detector.greeting_end
        if self._words is not None:
            if self._words[0] == end:
                return self._words[1]
            self._words[1].cancel()  # the greeting went on: that run is stale
        run = asyncio.ensure_future(self._transcribe(self.detector.greeting_audio()))
        self._words = (end, run)
        return run

    async def _let_finish(self) -> None:
        deadline = self._clock() + FINISH_MAX_S
        while self.detector.quiet_ms < FINISH_QUIET_MS and self._clock() < deadline:
            if not await self._step():
                return

    async def cue(self) -> MessageCue | None:
        while self.detector.cue is None and await self._step():
            pass
        return self.detector.cue

    async def _step(self) -> bool:
        """Feed the next frame, or the silence of a gap; False once the audio has ended."""
        if self._ended:
            return False
        if self._next is None:
            self._next = asyncio.ensure_future(anext(self._frames))
        done, _ = await asyncio.wait({self._next}, timeout=GAP_S)
        if not done:
            self._fill_gap()
            return True
        task, self._next = self._next, None
        try:
            frame = task.result()
        except StopAsyncIteration:
            self._ended = True
            return False
        self._heard_until = max(self._heard_until, frame.received_at)
        narrow = frame.sample_rate == SAMPLE_RATE
        self.detector.feed(frame.pcm if narrow else self._halver.process(frame.pcm))
        return True

    def _fill_gap(self) -> None:
        frames = int((self._clock() - self._heard_until) / FRAME_S)
        if frames * FRAME_S < GAP_S:
            return
        for _ in range(frames):
            self.detector.feed(silence(FRAME_SAMPLES))
            if self.detector.cue is not None:
                break
        self._heard_until += frames * FRAME_S

    async def close(self) -> None:
        self._tap.close()
        pending: list[asyncio.Future[Any]] = [] if self._next is None else [self._next]
        if self._words is not None:
            pending.append(self._words[1])
        self._next = self._words = None
        await cancel_and_wait(*pending)

    async def __aenter__(self) -> MachineListener:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()
