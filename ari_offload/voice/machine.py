"""The async shell of answering-machine detection: a call's inbound audio -> MachineDetector.

A two-party bridge forwards RTP only while the far end sends it, and a phone or a machine
may send none while it is quiet (silence suppression): a stretch with no frames is fed to the
detector as the silence it is, counted on the clock, or a person who said "Hello?" and then
sent nothing would never be decided.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from ari_offload.audio import FRAME_S, FRAME_SAMPLES, silence
from ari_offload.media.port import FrameTap, MediaFrame, MediaPort
from ari_offload.tasks import cancel_and_wait
from ari_offload.voice.machine_detect import MachineDetector, MessageCue, Verdict

# No frame for this long: the far end sends nothing, the gap is silence. Longer than jitter.
GAP_S = 0.1


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
    ) -> None:
        self.detector = detector
        self._clock = clock
        self._tap: FrameTap = media.tap()  # opened now: the greeting is heard from here
        self._frames: AsyncIterator[MediaFrame] = aiter(self._tap)
        self._next: asyncio.Future[MediaFrame] | None = None
        self._heard_until = clock()  # the clock time up to which audio was fed
        self._ended = False

    async def verdict(self) -> Verdict | None:
        while self.detector.verdict is None and await self._step():
            pass
        return self.detector.verdict

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
        self.detector.feed(frame.pcm)
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
        if self._next is not None:
            await cancel_and_wait(self._next)
            self._next = None

    async def __aenter__(self) -> MachineListener:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()
