"""An in-memory ``MediaPort`` for unit tests: frames pushed by the test, playout it controls.

``say()`` publishes caller frames to the open taps, as a transport would. Played audio is
kept; with ``hold=True`` nothing plays until the test calls ``advance()``, so a test can talk
over a reply that is still "playing".
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import replace

import numpy as np

from ari_offload.audio import Pcm
from ari_offload.media.g711 import ULAW, Codec
from ari_offload.media.port import DEFAULT_TAP_FRAMES, FrameTap, MediaFrame, MediaStats, TapSet


class FakeMediaPort:
    def __init__(self, hold: bool = False, codec: Codec = ULAW) -> None:
        self.hold = hold
        self._codec = codec  # its rate is the port's (SLIN16: a wideband port)
        self._taps = TapSet()
        self._played_taps = TapSet()
        self._queued: list[Pcm] = []  # not played yet
        self.heard: list[Pcm] = []  # what the caller has heard, in order
        self._played = 0
        self._drained = asyncio.Event()
        self._drained.set()
        self.flushes = 0
        self.frames_in = 0
        self.closed = False
        self.tap_count = 0  # taps opened
        self.on_key: Callable[[str], None] | None = None

    @property
    def codec(self) -> Codec:
        return self._codec

    def tap(self, max_frames: int = DEFAULT_TAP_FRAMES) -> FrameTap:
        self.tap_count += 1
        return self._taps.open(max_frames)

    def tap_played(self, max_frames: int = DEFAULT_TAP_FRAMES) -> FrameTap:
        return self._played_taps.open(max_frames)

    # the caller's side

    def say(self, frames: Iterable[Pcm]) -> None:
        codec = self._codec
        for pcm in frames:
            assert pcm.shape == (codec.frame_samples,)
            stamp = self.frames_in * codec.frame_samples  # a stream with no gaps
            frame = MediaFrame(pcm, codec.encode(pcm), self.frames_in, stamp)
            self._taps.publish(replace(frame, sample_rate=codec.sample_rate))
            self.frames_in += 1

    @property
    def unread(self) -> int:
        """Caller frames said and not yet read by a tap's reader."""
        return self._taps.pending

    def advance(self, samples: int | None = None) -> None:
        """Play ``samples`` (all of the queue if None)."""
        left = sum(len(p) for p in self._queued) if samples is None else samples
        while left > 0 and self._queued:
            head = self._queued[0]
            take = min(left, len(head))
            self.heard.append(head[:take])
            # numbered by samples played: the outbound clock of a port that never pauses
            frame = MediaFrame(head[:take], b"", 0, self._played)
            self._played_taps.publish(replace(frame, sample_rate=self._codec.sample_rate))
            self._played += take
            left -= take
            if take == len(head):
                self._queued.pop(0)
            else:
                self._queued[0] = head[take:]
        if not self._queued:
            self._drained.set()

    # MediaPort

    def play(self, pcm: Pcm) -> int:
        if self.closed or not len(pcm):
            return self._played + self.queued
        self._queued.append(pcm)
        self._drained.clear()
        position = self._played + self.queued
        if not self.hold:
            self.advance()
        return position

    def play_payload(self, payload: bytes) -> int:
        return self.play(self._codec.decode(payload))

    def flush(self) -> int:
        self._queued.clear()
        self._drained.set()
        self.flushes += 1
        return self._played

    @property
    def played(self) -> int:
        return self._played

    @property
    def queued(self) -> int:
        return sum(len(p) for p in self._queued)

    async def drained(self) -> None:
        await self._drained.wait()

    @property
    def stats(self) -> MediaStats:
        return MediaStats(self.frames_in, 0, {"overflow": self._taps.total_overflow})

    async def close(self) -> None:
        self.closed = True
        self.flush()
        self._taps.close()
        self._played_taps.close()

    def heard_samples(self) -> int:
        return int(np.sum([len(p) for p in self.heard]))
