"""RTP over UDP for one call's ExternalMedia channel: the thin asyncio shell over the cores.

Inbound: datagrams from the remote Asterisk address -> ``RtpPacket.parse`` -> ``JitterBuffer``
-> decode -> a bounded queue read by ``frames()``. Outbound: ``enqueue()`` PCM or G.711 ->
20 ms frames -> ``RtpPacketizer`` -> one packet per ``Pacer`` slot. Positions are in samples:
audio enqueued up to position P has gone out once ``sent_samples >= P``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from ari_offload.audio import FRAME_S, FRAME_SAMPLES, SAMPLE_RATE, Pcm, as_pcm
from ari_offload.config import DEFAULT_JITTER_FRAMES, DEFAULT_RTP_HOST
from ari_offload.media.g711 import ULAW, Codec
from ari_offload.media.jitter import JitterBuffer
from ari_offload.media.pacer import Pacer
from ari_offload.media.packetizer import FrameSplitter, RtpPacketizer
from ari_offload.media.rtp import RtpPacket

log = logging.getLogger("ari_offload.media")

DEFAULT_INBOX_FRAMES = 250  # 5 s: a consumer that far behind is broken, not slow


@dataclass(frozen=True, slots=True)
class MediaFrame:
    """One inbound RTP frame: 160 samples for Asterisk's 20 ms G.711."""

    pcm: Pcm
    payload: bytes
    sequence_number: int
    timestamp: int


@dataclass(frozen=True)
class EndpointStats:
    received: int  # valid RTP from the remote
    malformed: int  # from the remote but not RTP
    foreign: int  # from any other address (or before set_remote)
    lost: int
    duplicates: int
    late: int
    sent: int
    resyncs: int  # the sender fell behind and re-anchored its clock
    overflow: int  # inbound frames dropped because frames() was not read fast enough
    ignored: int  # other payload types (e.g. telephone-event) or empty payloads


@dataclass
class _Counters:
    received: int = 0
    malformed: int = 0
    foreign: int = 0
    sent: int = 0
    overflow: int = 0
    ignored: int = 0


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: RtpEndpoint) -> None:
        self._endpoint = endpoint

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._endpoint._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # e.g. ICMP port unreachable while Asterisk sets up: not fatal for the call.
        log.debug("RTP socket error: %s", exc)


class RtpEndpoint:
    """Symmetric RTP with one remote; build it with ``await RtpEndpoint.open()``."""

    def __init__(
        self,
        codec: Codec = ULAW,
        jitter_frames: int = DEFAULT_JITTER_FRAMES,
        inbox_frames: int = DEFAULT_INBOX_FRAMES,
        rng: random.Random | None = None,
    ) -> None:
        self.codec = codec
        self._counters = _Counters()
        self._remote: tuple[str, int] | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._closed = False
        # inbound
        self._jitter = JitterBuffer(jitter_frames)
        self._jitter_wait_s = jitter_frames * FRAME_S
        self._jitter_timer: asyncio.TimerHandle | None = None
        self._inbox: deque[MediaFrame] = deque(maxlen=inbox_frames)
        self._inbox_ready = asyncio.Event()
        # outbound
        self._splitter = FrameSplitter(FRAME_SAMPLES)
        self._out: deque[tuple[bytes, int]] = deque()  # (payload, real samples in it)
        self._queued = 0
        self._sent_samples = 0
        self._packetizer = RtpPacketizer(codec.payload_type, rng=rng)
        self._pacer = Pacer(FRAME_S)
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._sender: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls,
        host: str = DEFAULT_RTP_HOST,
        codec: Codec = ULAW,
        jitter_frames: int = DEFAULT_JITTER_FRAMES,
        port: int = 0,
        *,
        inbox_frames: int = DEFAULT_INBOX_FRAMES,
        rng: random.Random | None = None,
    ) -> RtpEndpoint:
        """Bind a UDP socket on ``host:port`` (0 = any free port) and start the sender."""
        endpoint = cls(codec, jitter_frames, inbox_frames, rng)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(endpoint), local_addr=(host, port)
        )
        endpoint._transport = transport
        endpoint._sender = asyncio.create_task(endpoint._send_loop(), name="rtp-sender")
        endpoint._sender.add_done_callback(_log_crash)
        return endpoint

    @property
    def local_address(self) -> tuple[str, int]:
        host, port = self._require_transport().get_extra_info("sockname")[:2]
        return host, port

    def set_remote(self, host: str, port: int) -> None:
        """Accept datagrams only from, and send only to, ``host:port`` (a numeric address)."""
        self._remote = (str(ipaddress.ip_address(host)), port)
        self._wake.set()  # audio may be waiting for somewhere to go

    @property
    def stats(self) -> EndpointStats:
        c, j = self._counters, self._jitter.stats
        return EndpointStats(
            received=c.received,
            malformed=c.malformed,
            foreign=c.foreign,
            lost=j.lost,
            duplicates=j.duplicates,
            late=j.late,
            sent=c.sent,
            resyncs=self._pacer.resyncs,
            overflow=c.overflow,
            ignored=c.ignored,
        )

    # inbound

    async def frames(self) -> AsyncIterator[MediaFrame]:
        """Inbound frames in sequence order; ends after ``close()`` once the queue is read."""
        while True:
            while self._inbox:
                yield self._inbox.popleft()
            if self._closed:
                return
            self._inbox_ready.clear()
            await self._inbox_ready.wait()

    def _on_datagram(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if self._remote is None or tuple(addr[:2]) != self._remote:
            self._counters.foreign += 1
            return
        try:
            packet = RtpPacket.parse(data)
        except ValueError as exc:
            self._counters.malformed += 1
            log.debug("dropped malformed RTP from %s:%s: %s", addr[0], addr[1], exc)
            return
        self._counters.received += 1
        for ready in self._jitter.add(packet):
            self._deliver(ready)
        self._arm_jitter_timer()

    def _deliver(self, packet: RtpPacket) -> None:
        if packet.payload_type != self.codec.payload_type or not packet.payload:
            self._counters.ignored += 1
            return
        if len(self._inbox) == self._inbox.maxlen:
            self._counters.overflow += 1  # the deque drops the oldest frame
        pcm = self.codec.decode(packet.payload)
        frame = MediaFrame(pcm, packet.payload, packet.sequence_number, packet.timestamp)
        self._inbox.append(frame)
        self._inbox_ready.set()

    def _arm_jitter_timer(self) -> None:
        # When the stream pauses, packets held behind a gap must not wait for the next packet.
        if self._jitter.pending and self._jitter_timer is None:
            loop = asyncio.get_running_loop()
            self._jitter_timer = loop.call_later(self._jitter_wait_s, self._on_jitter_timeout)
        elif not self._jitter.pending and self._jitter_timer is not None:
            self._jitter_timer.cancel()
            self._jitter_timer = None

    def _on_jitter_timeout(self) -> None:
        self._jitter_timer = None
        for ready in self._jitter.flush():
            self._deliver(ready)

    # outbound

    @property
    def queued_samples(self) -> int:
        """Samples enqueued but not sent yet."""
        return self._queued

    @property
    def sent_samples(self) -> int:
        """Stream position of what has gone out (padding not counted)."""
        return self._sent_samples

    def enqueue(self, pcm: Pcm) -> int:
        """Queue 8 kHz int16 PCM of any length; return the stream position at its end.

        A partial last frame waits for more audio, and is padded with silence only if
        nothing more has come when its slot is due. A no-op after ``close()``.
        """
        samples = as_pcm(pcm)
        if self._closed or not len(samples):
            return self._position()
        for frame in self._splitter.feed(samples):
            self._out.append((self.codec.encode(frame), FRAME_SAMPLES))
        self._queued += len(samples)
        self._wake_sender()
        return self._position()

    def enqueue_payload(self, data: bytes) -> int:
        """Queue already-encoded G.711 (one byte per sample); a short tail is padded."""
        if self._closed or not data:
            return self._position()
        self._out.extend(self._pcm_tail())  # PCM queued before goes out first
        silence = bytes([self.codec.silence])
        for start in range(0, len(data), FRAME_SAMPLES):
            chunk = data[start : start + FRAME_SAMPLES]
            self._out.append((chunk.ljust(FRAME_SAMPLES, silence), len(chunk)))
        self._queued += len(data)
        self._wake_sender()
        return self._position()

    def flush(self) -> int:
        """Drop everything not sent yet (barge-in); return how many samples were dropped."""
        dropped = self._queued
        self._out.clear()
        self._splitter.flush(pad=False)
        self._queued = 0
        self._drained.set()
        return dropped

    async def drained(self) -> None:
        """Wait until everything queued has been sent (or flushed)."""
        await self._drained.wait()

    def _position(self) -> int:
        return self._sent_samples + self._queued

    def _pcm_tail(self) -> list[tuple[bytes, int]]:
        real = self._splitter.pending
        return [(self.codec.encode(frame), real) for frame in self._splitter.flush(pad=True)]

    def _wake_sender(self) -> None:
        self._drained.clear()
        self._wake.set()

    def _destination(self) -> tuple[str, int] | None:
        """Where the next frame goes, or None if there is nothing to send (or nowhere yet)."""
        if self._out or self._splitter.pending:
            return self._remote
        return None

    async def _send_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            remote = self._destination()
            if remote is not None:
                delay = self._pacer.delay(now)
                if delay > 0:
                    await asyncio.sleep(delay)
                    continue
                self._send_frame(remote)
                self._pacer.advance()
                continue
            due = self._pacer.next_due
            if due is not None and due > now:
                await asyncio.sleep(due - now)  # audio may still arrive in time for this slot
                continue
            await self._idle(loop, due)

    async def _idle(self, loop: asyncio.AbstractEventLoop, due: float | None) -> None:
        while self._destination() is None:
            self._wake.clear()
            await self._wake.wait()
        if due is not None:
            # A new talkspurt: marker bit, and the timestamp covers the silent gap.
            gap_s = max(0.0, loop.time() - due)
            self._packetizer.new_talkspurt(round(gap_s * SAMPLE_RATE))
            self._pacer.reset()

    def _send_frame(self, remote: tuple[str, int]) -> None:
        payload, real = self._out.popleft() if self._out else self._pcm_tail()[0]
        packet = self._packetizer.packet(payload)
        self._require_transport().sendto(bytes(packet), remote)
        self._counters.sent += 1
        self._sent_samples += real
        self._queued -= real
        if not self._queued:
            self._drained.set()

    def _require_transport(self) -> asyncio.DatagramTransport:
        if self._transport is None:
            raise RuntimeError("RtpEndpoint is not open: use `await RtpEndpoint.open()`")
        return self._transport

    async def close(self) -> None:
        """Stop sending, close the socket and end ``frames()``. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self.flush()
        if self._jitter_timer is not None:
            self._jitter_timer.cancel()
        if self._sender is not None:
            self._sender.cancel()
            await asyncio.wait({self._sender})
        if self._transport is not None:
            self._transport.close()
        self._inbox_ready.set()


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("RTP sender stopped", exc_info=task.exception())
