"""RTP over UDP for one call's ExternalMedia channel: the ``MediaPort`` as a thin asyncio shell.

Inbound: datagrams from the remote Asterisk address -> ``RtpPacket.parse`` -> ``JitterBuffer``
-> decode -> ``TapSet.publish`` (every open tap gets the frame; with none open it is dropped).
Outbound: ``play()`` PCM or ``play_payload()`` G.711 -> ``Playout`` (20 ms frames, positions,
marks) -> ``RtpPacketizer`` -> one packet per ``Pacer`` slot; a frame counts as played once
sent, and goes to the ``tap_played`` readers then, stamped with its RTP timestamp.
``open_rtp`` is this transport's opener for ``transports.TRANSPORTS``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ari_offload.audio import FRAME_S, SAMPLE_RATE, Pcm
from ari_offload.config import DEFAULT_JITTER_FRAMES, DEFAULT_RTP_HOST, AriSettings, MediaSettings
from ari_offload.media.g711 import ULAW, Codec, codec_for
from ari_offload.media.jitter import JitterBuffer
from ari_offload.media.pacer import Pacer
from ari_offload.media.packetizer import RtpPacketizer
from ari_offload.media.playout import Playout
from ari_offload.media.port import (
    DEFAULT_TAP_FRAMES,
    ExternalMediaRequest,
    FrameTap,
    KeyHandler,
    MediaFrame,
    MediaStats,
    TapSet,
)
from ari_offload.media.rtp import RtpPacket

log = logging.getLogger("ari_offload.media")

# externalMedia's channel variables: where Asterisk's side of the RTP stream listens
REMOTE_HOST_VAR = "UNICASTRTP_LOCAL_ADDRESS"
REMOTE_PORT_VAR = "UNICASTRTP_LOCAL_PORT"


@dataclass(frozen=True)
class EndpointStats:
    """The RTP detail behind ``MediaStats`` (``RtpEndpoint.rtp_stats``)."""

    received: int  # valid RTP from the remote
    malformed: int  # from the remote but not RTP
    foreign: int  # from any other address (or before set_remote)
    lost: int
    duplicates: int
    late: int
    sent: int
    resyncs: int  # the sender fell behind and re-anchored its clock
    overflow: int  # frames a tap (either way) dropped because it was not read fast enough
    ignored: int  # other payload types (e.g. telephone-event) or empty payloads


@dataclass
class _Counters:
    received: int = 0
    malformed: int = 0
    foreign: int = 0
    sent: int = 0
    delivered: int = 0  # decoded frames published to the taps
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
    """Symmetric RTP with one remote as a ``MediaPort``; build it with ``await open()``."""

    def __init__(
        self,
        codec: Codec = ULAW,
        jitter_frames: int = DEFAULT_JITTER_FRAMES,
        rng: random.Random | None = None,
    ) -> None:
        if codec.sample_width != 1:
            raise ValueError(f"RTP carries G.711 here, not {codec.name}")
        self._codec = codec
        self.on_key: KeyHandler | None = None  # never called: ARI reports RTP's keys
        self._counters = _Counters()
        self._remote: tuple[str, int] | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._closed = False
        # inbound
        self._jitter = JitterBuffer(jitter_frames)
        self._jitter_wait_s = jitter_frames * FRAME_S
        self._jitter_timer: asyncio.TimerHandle | None = None
        self._taps = TapSet()
        # outbound
        self._playout = Playout(codec)
        self._packetizer = RtpPacketizer(codec.payload_type, rng=rng)
        self._pacer = Pacer(FRAME_S)
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._sender: asyncio.Task[None] | None = None
        self._played_taps = TapSet()

    @classmethod
    async def open(
        cls,
        host: str = DEFAULT_RTP_HOST,
        codec: Codec = ULAW,
        jitter_frames: int = DEFAULT_JITTER_FRAMES,
        port: int = 0,
        *,
        rng: random.Random | None = None,
    ) -> RtpEndpoint:
        """Bind a UDP socket on ``host:port`` (0 = any free port) and start the sender."""
        endpoint = cls(codec, jitter_frames, rng)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(endpoint), local_addr=(host, port)
        )
        endpoint._transport = transport
        endpoint._sender = asyncio.create_task(endpoint._send_loop(), name="rtp-sender")
        endpoint._sender.add_done_callback(_log_crash)
        return endpoint

    @property
    def codec(self) -> Codec:
        return self._codec

    @property
    def local_address(self) -> tuple[str, int]:
        host, port = self._require_transport().get_extra_info("sockname")[:2]
        return host, port

    def set_remote(self, host: str, port: int) -> None:
        """Accept datagrams only from, and send only to, ``host:port`` (a numeric address)."""
        self._remote = (str(ipaddress.ip_address(host)), port)
        self._wake.set()  # audio may be waiting for somewhere to go

    @property
    def stats(self) -> MediaStats:
        rtp = self.rtp_stats
        dropped = {
            "malformed": rtp.malformed,
            "foreign": rtp.foreign,
            "lost": rtp.lost,
            "overflow": rtp.overflow,
        }
        return MediaStats(self._counters.delivered, rtp.sent, dropped)

    @property
    def rtp_stats(self) -> EndpointStats:
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
            overflow=self._taps.total_overflow + self._played_taps.total_overflow,
            ignored=c.ignored,
        )

    # inbound

    def tap(self, max_frames: int = DEFAULT_TAP_FRAMES) -> FrameTap:
        """A new reader of inbound frames in sequence order, from now on; ends at ``close()``."""
        return self._taps.open(max_frames)

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
        if packet.payload_type != self._codec.payload_type or not packet.payload:
            self._counters.ignored += 1
            return
        pcm = self._codec.decode(packet.payload)
        self._counters.delivered += 1
        self._taps.publish(
            MediaFrame(pcm, packet.payload, packet.sequence_number, packet.timestamp)
        )

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
    def played(self) -> int:
        """Stream position sent so far (padding not counted): RTP has no later playout report."""
        return self._playout.played

    @property
    def queued(self) -> int:
        return self._playout.queued

    def tap_played(self, max_frames: int = DEFAULT_TAP_FRAMES) -> FrameTap:
        """A new reader of the frames sent from now on, timestamped as sent; ends at ``close()``."""
        return self._played_taps.open(max_frames)

    def play(self, pcm: Pcm) -> int:
        """Queue 8 kHz int16 PCM of any length; return the stream position at its end.

        A partial last frame waits for more audio, and is padded with silence only if
        nothing more has come when its slot is due. A no-op after ``close()``.
        """
        if self._closed:
            return self._playout.position
        return self._queued_up_to(self._playout.add_pcm(pcm))

    def play_payload(self, payload: bytes) -> int:
        """Queue already-encoded G.711 (one byte per sample); a short tail is padded."""
        if self._closed:
            return self._playout.position
        return self._queued_up_to(self._playout.add_payload(payload))

    def flush(self) -> int:
        """Drop everything not sent yet (barge-in); return the position playback stopped at."""
        cut = self._playout.flush()
        self._drained.set()
        return cut

    async def drained(self) -> None:
        """Wait until everything queued has been sent (or flushed)."""
        await self._drained.wait()

    def _queued_up_to(self, position: int) -> int:
        if not self._playout.idle:
            self._drained.clear()
            self._wake.set()
        return position

    def _destination(self) -> tuple[str, int] | None:
        """Where the next frame goes, or None if there is nothing to send (or nowhere yet)."""
        return self._remote if self._playout.has_frame else None

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
        frame = self._playout.take_frame()
        if frame is None:
            return
        packet = self._packetizer.packet(frame.payload)
        self._require_transport().sendto(bytes(packet), remote)
        self._counters.sent += 1
        self._playout.report_played(frame.samples)  # sent is as far as RTP can tell
        if self._played_taps.listening:
            pcm = self._codec.decode(frame.payload)
            self._played_taps.publish(
                MediaFrame(pcm, frame.payload, packet.sequence_number, packet.timestamp)
            )
        if self._playout.idle:
            self._drained.set()

    def _require_transport(self) -> asyncio.DatagramTransport:
        if self._transport is None:
            raise RuntimeError("RtpEndpoint is not open: use `await RtpEndpoint.open()`")
        return self._transport

    async def close(self) -> None:
        """Stop sending, close the socket and end every tap. Safe to call twice."""
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
        self._taps.close()
        self._played_taps.close()


@dataclass(frozen=True)
class RtpLink:
    """An ``RtpEndpoint`` with what externalMedia needs to send RTP to it (a ``MediaLink``)."""

    port: RtpEndpoint
    external_media: ExternalMediaRequest

    async def connect(self, channel_vars: Mapping[str, str]) -> str:
        remote_host = channel_vars.get(REMOTE_HOST_VAR)
        remote_port = channel_vars.get(REMOTE_PORT_VAR)
        if not remote_host or not remote_port:
            raise ValueError(f"externalMedia gave no {REMOTE_HOST_VAR}/PORT: {channel_vars}")
        self.port.set_remote(remote_host, int(remote_port))
        host, port = self.port.local_address
        return f"rtp {host}:{port} <-> {remote_host}:{remote_port}"


async def open_rtp(settings: MediaSettings, ari: AriSettings) -> RtpLink:
    """The "rtp" transport: a UDP socket on ``settings.rtp_host`` for externalMedia RTP.

    ``ari`` (where Asterisk is) is not needed: Asterisk's channel variables say where to send.
    """
    endpoint = await RtpEndpoint.open(
        host=settings.rtp_host,
        codec=codec_for(settings.codec),
        jitter_frames=settings.jitter_frames,
    )
    host, port = endpoint.local_address
    request = ExternalMediaRequest(f"{host}:{port}", settings.codec, "rtp", "udp")
    return RtpLink(endpoint, request)


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("RTP sender stopped", exc_info=task.exception())
