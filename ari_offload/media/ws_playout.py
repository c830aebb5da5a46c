"""Sans-IO framing for chan_websocket, both ways.

Outbound (``MarkedPlayout``): chan_websocket queues what it is sent (up to 1000 frames) and
plays one frame per 20 ms tick of its own clock; what was played it tells only through marks:
a MARK_MEDIA queued after a frame comes back as MEDIA_MARK_PROCESSED when playout gets past
that frame. So every frame goes out with a mark behind it, ``played`` moves with the marks
(what the caller has heard, to a frame), and at most ``ahead_frames`` are in Asterisk's queue:
enough to ride out a stalled event loop, never near its XOFF level. Asterisk's clock paces
the stream (each mark back frees a slot), so there is no pacer and no drift here.

FLUSH_MEDIA empties Asterisk's queue, marks included: ``flush()`` forgets what was in flight
and the next ``take()`` starts with FLUSH_MEDIA, before any new audio. A mark that comes
back for flushed audio (it crossed the FLUSH on the wire) is stale and ignored. MEDIA_XOFF
stops sending until MEDIA_XON.

Inbound (``ByteFramer``): the binary messages Asterisk sends (one 20 ms frame each on the test
bed, but no frame size is promised) cut into whole frames.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from ari_offload.audio import Pcm
from ari_offload.media.g711 import Codec
from ari_offload.media.playout import Playout
from ari_offload.media.ws_messages import FLUSH_MEDIA, mark_media

# A partial last frame is padded and sent only once this few frames are left to play before
# it: until then more audio (the next sentence) may come to fill it.
PAD_WHEN_FRAMES_LEFT = 3


@dataclass(frozen=True, slots=True)
class _Sent:
    mark: int
    samples: int  # real samples of the frame (padding not counted)
    payload: bytes


class MarkedPlayout:
    """One call's outbound audio for chan_websocket: frames out with marks, played by marks."""

    def __init__(self, codec: Codec, ahead_frames: int) -> None:
        if ahead_frames < 1:
            raise ValueError(f"ahead_frames must be at least 1, got {ahead_frames}")
        self.codec = codec
        self.ahead_frames = ahead_frames
        self._playout = Playout(codec)
        self._in_flight: deque[_Sent] = deque()  # sent, its mark not back yet
        self._next_mark = 1
        self._flush_due = False
        self.paused = False  # MEDIA_XOFF until MEDIA_XON
        self.epoch = 0  # bumped by flush(): messages taken before it are not to be sent
        self.frames_sent = 0
        self.stale_marks = 0
        self._played: list[bytes] = []  # payloads played since take_played()

    @property
    def played(self) -> int:
        """Stream position Asterisk has played (its marks say so)."""
        return self._playout.played

    @property
    def queued(self) -> int:
        """Samples added and not played yet (those in Asterisk's queue included)."""
        return self._playout.queued

    @property
    def in_flight(self) -> int:
        """Frames in Asterisk's queue (sent, their marks not back)."""
        return len(self._in_flight)

    @property
    def idle(self) -> bool:
        return self._playout.idle

    def add_pcm(self, pcm: Pcm) -> int:
        return self._playout.add_pcm(pcm)

    def add_payload(self, data: bytes) -> int:
        return self._playout.add_payload(data)

    def take(self) -> list[bytes | str]:
        """What to send now, in order: binary frames (each followed by its MARK_MEDIA) and
        commands; empty when nothing is due (Asterisk's share is full, or XOFF)."""
        out: list[bytes | str] = []
        if self._flush_due:
            out.append(FLUSH_MEDIA)
            self._flush_due = False
        while not self.paused and len(self._in_flight) < self.ahead_frames:
            pad = len(self._in_flight) <= PAD_WHEN_FRAMES_LEFT
            frame = self._playout.take_frame(pad=pad)
            if frame is None:
                break
            mark = self._next_mark
            self._next_mark += 1
            self._in_flight.append(_Sent(mark, frame.samples, frame.payload))
            self.frames_sent += 1
            out += [frame.payload, mark_media(str(mark))]
        return out

    def mark_processed(self, correlation_id: str) -> bool:
        """Playout passed this mark: everything sent up to it has been played.

        False (and counted in ``stale_marks``) for a mark not in flight: one of audio
        flushed since, or none of ours.
        """
        mark = int(correlation_id) if correlation_id.isdigit() else None
        if mark is None or not any(sent.mark == mark for sent in self._in_flight):
            self.stale_marks += 1
            return False
        while self._in_flight:
            sent = self._in_flight.popleft()
            self._playout.report_played(sent.samples)
            self._played.append(sent.payload)
            if sent.mark == mark:
                break
        return True

    def take_played(self) -> list[bytes]:
        """The frames (payloads) played since the last call, in order: what the caller heard
        (``MediaPort.tap_played``). Call it after each ``mark_processed``."""
        played, self._played = self._played, []
        return played

    def flush(self) -> int:
        """Drop everything not played (barge-in); return the position playback stopped at.

        What Asterisk has queued is dropped by the FLUSH_MEDIA the next ``take()`` begins
        with; up to a frame it was playing as the command arrived is heard but not counted.
        """
        if self._in_flight:
            self._flush_due = True
        self._in_flight.clear()
        self.epoch += 1
        return self._playout.flush()

    def xoff(self) -> None:
        self.paused = True

    def xon(self) -> None:
        self.paused = False


class ByteFramer:
    """Inbound bytes of any length -> whole frames of ``frame_bytes``; a partial one waits."""

    def __init__(self, frame_bytes: int) -> None:
        if frame_bytes < 1:
            raise ValueError(f"frame_bytes must be at least 1, got {frame_bytes}")
        self.frame_bytes = frame_bytes
        self._pending = b""

    @property
    def pending(self) -> int:
        return len(self._pending)

    def feed(self, data: bytes) -> list[bytes]:
        data = self._pending + data
        size = self.frame_bytes
        whole = len(data) - len(data) % size
        self._pending = data[whole:]
        return [data[start : start + size] for start in range(0, whole, size)]
