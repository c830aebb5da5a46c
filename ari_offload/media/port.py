"""The media port: what the rest of the app sees of a call's audio, whatever carries it.

A transport (RTP over UDP, chan_websocket) implements ``MediaPort``::

    inbound   port.tap() -> FrameTap: an async iterator of MediaFrame; each tap is its own
              bounded queue, so the conversation, a recorder and a detector can all read
    outbound  port.play(pcm) -> position; flush() -> position cut at; drained(); played
              port.tap_played() -> FrameTap of the outbound frames as they are played

Setting a call up, a transport's opener (``transports.py``) returns a ``MediaLink``: the port,
and the externalMedia request that points Asterisk at it.

A port works at its codec's rate (``port.codec.sample_rate``: 8 kHz, or 16 kHz for slin16):
its frames carry that rate, ``play`` takes PCM at it, and positions count samples of the
outbound stream at it: audio queued up to position P has been played once ``played >= P``.
A transport that hears the caller's keys itself (chan_websocket's DTMF_END) hands them to
``port.on_key``; the controller merges them with ARI's (ari/keys.py), so none counts twice.

Frames that arrive while no tap is open are dropped silently: nobody was listening (a `talk`
action does not hear the caller), so there is no stale audio for the next listener and no loss
to count.

Both directions number their frames on their own sample clock (``MediaFrame.timestamp``):
inbound the sender's (RTP: Asterisk's timestamps), outbound the port's (RTP: the timestamps it
sends, silent gaps between talkspurts included). A reader that lines the two up (a recording)
follows the timestamps and needs the wall clock only to relate the two clocks' origins.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from ari_offload.audio import SAMPLE_RATE, Pcm
from ari_offload.media.g711 import Codec

DEFAULT_TAP_FRAMES = 250  # 5 s: a reader that far behind is broken, not slow


@dataclass(frozen=True, slots=True)
class MediaFrame:
    """One inbound 20 ms frame: decoded PCM and the payload as it came off the wire.

    ``sequence_number`` and ``timestamp`` are the transport's numbering (RTP: the packet's);
    ``received_at`` is the monotonic clock when it came off the wire, so a reader that falls
    behind still times what it hears from the moment the caller said it. ``sample_rate`` is
    the rate of ``pcm`` (the port's). An outbound frame (``tap_played``) is the same shape:
    ``received_at`` is when it was played.
    """

    pcm: Pcm
    payload: bytes
    sequence_number: int
    timestamp: int
    received_at: float = field(default_factory=time.monotonic)
    sample_rate: int = SAMPLE_RATE


@dataclass(frozen=True)
class MediaStats:
    """Counters every transport keeps; ``dropped`` maps a reason to a count (for metrics)."""

    frames_in: int
    frames_out: int
    dropped: Mapping[str, int] = field(default_factory=dict)


class FrameTap:
    """One reader's bounded queue of inbound frames; iterate it, ``close()`` it when done
    (or use it as ``with port.tap() as tap:``).

    When the reader falls ``max_frames`` behind, the oldest frame is dropped and counted in
    ``overflow``. Iteration ends once the tap (or its port) is closed and the queue is read.
    """

    def __init__(self, max_frames: int = DEFAULT_TAP_FRAMES) -> None:
        self._queue: deque[MediaFrame] = deque(maxlen=max_frames)
        self._ready = asyncio.Event()
        self.closed = False
        self.overflow = 0

    @property
    def pending(self) -> int:
        """Frames received and not read yet."""
        return len(self._queue)

    def push(self, frame: MediaFrame) -> None:
        if self.closed:
            return
        if len(self._queue) == self._queue.maxlen:
            self.overflow += 1  # the deque drops the oldest frame
        self._queue.append(frame)
        self._ready.set()

    def close(self) -> None:
        self.closed = True
        self._ready.set()

    def __enter__(self) -> FrameTap:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __aiter__(self) -> AsyncIterator[MediaFrame]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[MediaFrame]:
        while True:
            while self._queue:
                yield self._queue.popleft()
                if self._queue:
                    # A backlog (after a stall) is read one frame per loop step: other calls'
                    # frames and the RTP sender are due meanwhile.
                    await asyncio.sleep(0)
            if self.closed:
                return
            self._ready.clear()
            await self._ready.wait()


class TapSet:
    """The taps of one port: a transport ``publish``es each inbound frame to all of them."""

    def __init__(self) -> None:
        self._taps: list[FrameTap] = []
        self.overflow = 0  # of taps already closed, so stats do not shrink
        self.closed = False

    def open(self, max_frames: int = DEFAULT_TAP_FRAMES) -> FrameTap:
        """A new tap; once the set is closed, one that is already at its end."""
        tap = FrameTap(max_frames)
        if self.closed:
            tap.close()
        else:
            self._taps.append(tap)
        return tap

    @property
    def pending(self) -> int:
        """Frames received and not read yet, over the open taps."""
        return sum(tap.pending for tap in self._taps if not tap.closed)

    @property
    def listening(self) -> bool:
        """A tap is open: a transport builds frames nobody asked for (played audio) only then."""
        return any(not tap.closed for tap in self._taps)

    def publish(self, frame: MediaFrame) -> None:
        if any(tap.closed for tap in self._taps):
            self._forget_closed()
        for tap in self._taps:
            tap.push(frame)

    @property
    def total_overflow(self) -> int:
        return self.overflow + sum(tap.overflow for tap in self._taps)

    def close(self) -> None:
        self.closed = True
        for tap in self._taps:
            tap.close()
        self._forget_closed()

    def _forget_closed(self) -> None:
        for tap in self._taps:
            if tap.closed:
                self.overflow += tap.overflow
        self._taps = [tap for tap in self._taps if not tap.closed]


KeyHandler = Callable[[str], None]


class PlayedClock:
    """Numbers played frames on the outbound sample clock (``MediaFrame.timestamp``), for a
    transport that learns only after the fact what was played (chan_websocket's marks).

    A frame follows on from the one before; when the stream was idle (nothing to play) for
    more than ``gap_s``, the idle time is counted in, as RTP's timestamps count it. Shorter
    lulls (a late report, a stalled loop) are not gaps: the reports lag the audio, not lead it.
    """

    def __init__(self, rate: int, gap_s: float = 0.2) -> None:
        self.rate = rate
        self.gap_s = gap_s
        self._next = 0
        self._last: float | None = None  # when the frame before was reported played

    def stamp(self, samples: int, now: float) -> int:
        """The timestamp of a frame of ``samples`` reported played at ``now`` (monotonic)."""
        if self._last is not None:
            idle = now - self._last - samples / self.rate
            if idle > self.gap_s:
                self._next += round(idle * self.rate)
        self._last = now
        stamp = self._next & 0xFFFFFFFF
        self._next += samples
        return stamp


class MediaPort(Protocol):
    """One call's audio, both directions. Implemented by each transport under ``media/``."""

    # Called with each key the transport itself hears the caller press (None: nobody asks).
    on_key: KeyHandler | None

    @property
    def codec(self) -> Codec:
        """The wire codec (echo passes payloads through untouched); its ``sample_rate`` is
        the port's."""
        ...

    def tap(self, max_frames: int = DEFAULT_TAP_FRAMES) -> FrameTap:
        """A new reader of the inbound frames from now on (none of the past)."""
        ...

    def tap_played(self, max_frames: int = DEFAULT_TAP_FRAMES) -> FrameTap:
        """A new reader of the outbound frames as they are played (what the caller hears),
        from now on; ``timestamp`` counts samples on the outbound clock, gaps included."""
        ...

    def play(self, pcm: Pcm) -> int:
        """Queue PCM at the port's rate, of any length; return the stream position at its end."""
        ...

    def play_payload(self, payload: bytes) -> int:
        """Queue audio already in the wire codec; return the stream position at its end."""
        ...

    def flush(self) -> int:
        """Drop everything not played yet (barge-in); return the position playback stopped at."""
        ...

    @property
    def played(self) -> int:
        """Stream position played so far (what the caller has heard up to)."""
        ...

    @property
    def queued(self) -> int:
        """Samples queued and not played yet."""
        ...

    async def drained(self) -> None:
        """Return once everything queued has been played (or flushed)."""
        ...

    @property
    def stats(self) -> MediaStats: ...

    async def close(self) -> None:
        """Stop both directions and end every tap. Safe to call twice."""
        ...


@dataclass(frozen=True)
class ExternalMediaRequest:
    """The parameters of ARI's POST /channels/externalMedia for one transport."""

    external_host: str | None  # None where the app connects to Asterisk (chan_websocket)
    format: str  # the codec name, e.g. "ulaw"
    encapsulation: str
    transport: str
    options: tuple[tuple[str, str], ...] = ()  # more query parameters (connection_type=server)


class MediaLink(Protocol):
    """One call's opened transport: its port, and what Asterisk must be asked for."""

    @property
    def port(self) -> MediaPort: ...

    @property
    def external_media(self) -> ExternalMediaRequest: ...

    async def connect(self, channel_vars: Mapping[str, str]) -> str:
        """Take the externalMedia channel's variables and start the media flowing (RTP: the
        remote address; chan_websocket: dial its /media/<id>); return where it flows, for the
        log. Raises ``ValueError`` when the variables lack what the transport needs."""
        ...
