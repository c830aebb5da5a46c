"""Sans-IO playout: one call's outbound queue, its stream positions and its marks.

A transport puts audio in (``add_pcm`` / ``add_payload`` -> the stream position at its end),
takes wire-ready frames out when its clock says a slot is due (``take_frame``), and reports
what the far end has played (``report_played``); the core answers with the marks, the end
positions of queued chunks, now played in full. ``flush`` drops everything not played yet and
returns the position playback was cut at. No loop, no socket, no clock: the transport brings
time, this core only counts.

Positions count real samples of the stream at the codec's rate (padding is not counted):
audio queued up to position P has been played once ``played >= P``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from ari_offload.audio import Pcm, as_pcm
from ari_offload.media.g711 import Codec
from ari_offload.media.packetizer import FrameSplitter


@dataclass(frozen=True, slots=True)
class OutFrame:
    """One frame for the wire: a full frame of payload, ``samples`` of it real audio."""

    payload: bytes
    samples: int


class Playout:
    """The outbound queue of one stream, in the wire codec, cut into whole frames."""

    def __init__(self, codec: Codec, frame_samples: int | None = None) -> None:
        self.codec = codec
        self.frame_samples = frame_samples or codec.frame_samples  # default: 20 ms
        self._splitter = FrameSplitter(self.frame_samples)
        self._frames: deque[OutFrame] = deque()
        self._queued = 0  # real samples added and not played (frames in flight included)
        self._in_flight = 0  # taken by the transport, not reported played yet
        self._played = 0
        self._marks: deque[int] = deque()  # end positions of chunks not played in full

    @property
    def played(self) -> int:
        """Stream position played so far."""
        return self._played

    @property
    def queued(self) -> int:
        """Samples added and not played yet (including frames taken but not reported)."""
        return self._queued

    @property
    def position(self) -> int:
        """The stream position the next chunk starts at."""
        return self._played + self._queued

    @property
    def idle(self) -> bool:
        """Everything added has been played (or flushed)."""
        return not self._queued

    @property
    def has_frame(self) -> bool:
        """``take_frame`` would return a frame (a partial PCM tail counts: it gets padded)."""
        return bool(self._frames or self._splitter.pending)

    def add_pcm(self, pcm: Pcm) -> int:
        """Queue PCM of any length; return the position at its end (also its mark).

        A partial last frame waits for more audio; ``take_frame`` pads it only when it is due.
        """
        samples = as_pcm(pcm)
        if len(samples):
            for frame in self._splitter.feed(samples):
                self._frames.append(OutFrame(self.codec.encode(frame), self.frame_samples))
            self._add(len(samples))
        return self.position

    def add_payload(self, data: bytes) -> int:
        """Queue audio already in the wire codec (``sample_width`` bytes a sample); a short
        tail is padded (a stray byte of a half sample is dropped)."""
        width = self.codec.sample_width
        data = data[: len(data) - len(data) % width]
        if data:
            self._frames.extend(self._padded_tail())  # PCM queued before goes out first
            silence = bytes([self.codec.silence])
            size = self.frame_samples * width
            for start in range(0, len(data), size):
                chunk = data[start : start + size]
                self._frames.append(OutFrame(chunk.ljust(size, silence), len(chunk) // width))
            self._add(len(data) // width)
        return self.position

    def take_frame(self, pad: bool = True) -> OutFrame | None:
        """The next frame to send, or None when nothing is queued; it is then in flight.

        ``pad=False``: a partial PCM tail is not padded and sent yet (more audio may follow).
        """
        if self._frames:
            frame = self._frames.popleft()
        else:
            tail = self._padded_tail() if pad else []
            if not tail:
                return None
            frame = tail[0]
        self._in_flight += frame.samples
        return frame

    def report_played(self, samples: int) -> list[int]:
        """The far end played ``samples`` more of what was taken; return the marks now passed.

        Reports beyond what is in flight (e.g. of frames flushed since) are ignored.
        """
        samples = max(0, min(samples, self._in_flight))
        self._in_flight -= samples
        self._queued -= samples
        self._played += samples
        passed: list[int] = []
        while self._marks and self._marks[0] <= self._played:
            passed.append(self._marks.popleft())
        return passed

    def flush(self) -> int:
        """Drop everything not played yet (barge-in); return the position playback stopped at."""
        self._frames.clear()
        self._splitter.flush(pad=False)
        self._queued = 0
        self._in_flight = 0
        self._marks.clear()
        return self._played

    def _add(self, samples: int) -> None:
        self._queued += samples
        self._marks.append(self.position)

    def _padded_tail(self) -> list[OutFrame]:
        real = self._splitter.pending
        return [OutFrame(self.codec.encode(f), real) for f in self._splitter.flush(pad=True)]
