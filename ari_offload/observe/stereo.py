"""Both sides of a call on one timeline (sans-IO): frames in, interleaved stereo PCM out.

Stereo rather than mixed: the caller on the left channel, the agent (what the port played,
i.e. what the caller heard) on the right. Each side can then be transcribed, searched or
listened to alone, and talk-over is plain to see; a mono mix is one step away for whoever
wants it, while a mix can never be split back.

Alignment follows the sample clocks, not the reader's timing. Each side's frames carry their
stream's timestamps (``MediaFrame.timestamp``, in samples): a frame lands as many samples after
its side's previous frame as their timestamps differ, so speech is sample-exact however late
the reader ran, and a gap the timestamps count (a silent stretch, a lost packet) is silence.
The wall clock (``at``: seconds since the recording began, when the frame came off the wire or
was played) only places a side's first frame and re-places a frame whose timestamp disagrees
with it by more than ``max_skew_s`` (a restarted stream, or a transport whose numbering skips
no gaps). A side with no frames is silence.

Audio is released up to ``hold_s`` before now (``take``): a side running a little behind still
lands in place, and a frame later than that goes to the first sample not yet released.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ari_offload.audio import SAMPLE_RATE, Pcm, as_pcm

CALLER, AGENT = 0, 1  # the channels: left, right
CHANNELS = 2
DEFAULT_HOLD_S = 1.0
DEFAULT_MAX_SKEW_S = 0.5
_U32 = 1 << 32


@dataclass
class _Side:
    chunks: list[tuple[int, Pcm]] = field(default_factory=list)  # (position, samples), unreleased
    end: int = 0  # the timeline position after its last sample
    next_timestamp: int | None = None  # what the next frame's timestamp is if it follows on


class StereoTimeline:
    """Place each side's frames on one sample timeline; release it as 16-bit stereo PCM."""

    def __init__(
        self,
        rate: int = SAMPLE_RATE,
        hold_s: float = DEFAULT_HOLD_S,
        max_skew_s: float = DEFAULT_MAX_SKEW_S,
    ) -> None:
        self.rate = rate
        self._hold = round(hold_s * rate)
        self._max_skew = round(max_skew_s * rate)
        self._sides = (_Side(), _Side())
        self.released = 0  # samples per channel released so far
        self.replaced = 0  # frames placed by the wall clock after the first (for the log)

    def add(self, side: int, pcm: Pcm, timestamp: int, at: float) -> None:
        """One frame of ``side`` (CALLER or AGENT): its samples, its stream timestamp, and
        ``at``, seconds since the recording began when it came off the wire or was played."""
        samples = as_pcm(pcm)
        if not len(samples):
            return
        track = self._sides[side]
        clock = round(at * self.rate)
        position = clock
        if track.next_timestamp is not None:
            jump = (timestamp - track.next_timestamp) % _U32
            if jump >= _U32 // 2:
                jump -= _U32  # backwards: a duplicate, or a stream that restarted
            by_timestamp = track.end + jump
            if jump >= 0 and abs(by_timestamp - clock) <= self._max_skew:
                position = by_timestamp
            else:
                self.replaced += 1
        position = max(position, track.end, self.released)
        track.chunks.append((position, samples))
        track.end = position + len(samples)
        track.next_timestamp = (timestamp + len(samples)) % _U32

    def take(self, now: float) -> bytes:
        """The stereo PCM settled by ``now`` (seconds since the recording began)."""
        return self._release(round(now * self.rate) - self._hold)

    def finish(self, now: float = 0.0) -> bytes:
        """Everything not released yet: up to ``now`` (the recording's end, seconds since it
        began; a call's last seconds may be silent on both sides), or to the end of the later
        side if that is later."""
        return self._release(max(round(now * self.rate), *(side.end for side in self._sides)))

    def _release(self, until: int) -> bytes:
        count = until - self.released
        if count <= 0:
            return b""
        out = np.zeros((count, CHANNELS), dtype=np.int16)
        for channel, side in enumerate(self._sides):
            kept: list[tuple[int, Pcm]] = []
            for position, samples in side.chunks:
                start = position - self.released
                if start >= count:
                    kept.append((position, samples))
                    continue
                part = samples[: count - start]
                out[start : start + len(part), channel] = part
                if len(part) < len(samples):
                    kept.append((until, samples[len(part) :]))
            side.chunks = kept
        self.released = until
        return out.astype("<i2", copy=False).tobytes()
