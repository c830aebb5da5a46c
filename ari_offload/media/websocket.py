"""chan_websocket for one call's ExternalMedia channel: the ``MediaPort`` as a thin asyncio shell.

externalMedia with ``transport=websocket``, ``encapsulation=none``, ``connection_type=server``
makes a channel that waits for us: its variables name the connection
(``MEDIA_WEBSOCKET_CONNECTION_ID``) and the frame size it plays best; we dial
``ws://<ARI host>/media/<id>`` (subprotocol ``media``, no credentials: the id is the key), and
only then does the channel enter the app. Control messages are JSON (``transport_data=f(json)``).

Inbound: binary messages -> ``ByteFramer`` (whole 20 ms frames) -> decode -> ``TapSet.publish``.
TEXT messages -> ``ws_messages.parse_event``: MEDIA_START (the format we asked for, checked),
MEDIA_MARK_PROCESSED (playout positions), DTMF_END (-> ``on_key``), MEDIA_XOFF/XON; a
malformed or unknown one is logged at debug and counted, never the end of the call.
Outbound: ``play()`` -> ``MarkedPlayout`` -> a sender task sends what it gives (frames with
marks; FLUSH_MEDIA first after a ``flush()``) whenever something changed: a play, a flush, a
mark back, XON. A frame whose mark comes back has been played: it goes to the ``tap_played``
readers then (never one a FLUSH_MEDIA dropped), numbered by a ``PlayedClock``.
``open_websocket`` is this transport's opener for ``transports.TRANSPORTS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

import aiohttp
import yarl

from ari_offload.audio import FRAME_MS, Pcm
from ari_offload.config import AriSettings, MediaSettings
from ari_offload.media.g711 import Codec, codec_for
from ari_offload.media.port import (
    DEFAULT_TAP_FRAMES,
    ExternalMediaRequest,
    FrameTap,
    KeyHandler,
    MediaFrame,
    MediaStats,
    PlayedClock,
    TapSet,
)
from ari_offload.media.ws_messages import (
    AsteriskError,
    DtmfEnd,
    MarkProcessed,
    MediaStart,
    MediaXoff,
    MediaXon,
    UnknownEvent,
    parse_event,
)
from ari_offload.media.ws_playout import ByteFramer, MarkedPlayout
from ari_offload.tasks import cancel_and_wait

log = logging.getLogger("ari_offload.media")

CONNECTION_ID_VAR = "MEDIA_WEBSOCKET_CONNECTION_ID"
FRAME_SIZE_VAR = "MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE"
SUBPROTOCOL = "media"
MEDIA_START_TIMEOUT_S = 5.0  # Asterisk sends it as soon as the connection is up
CLOSE_TIMEOUT_S = 2.0
_OPTIONS = (("connection_type", "server"), ("transport_data", "f(json)"))
# What an Asterisk without JSON control messages (f(json)) and MARK_MEDIA answers with.
OLD_ASTERISK = (
    "Asterisk sent MEDIA_START as plain text: the websocket transport needs chan_websocket's"
    " JSON control messages and MARK_MEDIA (Asterisk 20.18, 22.8, 23.2 or later)"
)


@dataclass
class _Counters:
    frames_in: int = 0
    malformed: int = 0  # TEXT messages that are no well-formed event
    unknown: int = 0  # well-formed events we do not know
    refused: int = 0  # Asterisk's ERROR events: a command of ours it did not take
    xoff: int = 0
    keys: int = 0


class WebSocketPort:
    """One chan_websocket connection as a ``MediaPort``; ``connect()`` it, ``close()`` it."""

    def __init__(self, codec: Codec, ahead_frames: int) -> None:
        self._codec = codec
        self.on_key: KeyHandler | None = None
        self._counters = _Counters()
        self._taps = TapSet()
        self._played_taps = TapSet()
        self._played_clock = PlayedClock(codec.sample_rate)
        self._frames_played = 0
        self._framer = ByteFramer(codec.frame_bytes)
        self._out = MarkedPlayout(codec, ahead_frames)
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._started: asyncio.Future[MediaStart] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    @property
    def codec(self) -> Codec:
        return self._codec

    async def connect(self, url: str, timeout_s: float = MEDIA_START_TIMEOUT_S) -> MediaStart:
        """Dial Asterisk's media websocket and wait for MEDIA_START; ``ValueError`` if it
        speaks another format or frame size than asked for. aiohttp's errors pass through."""
        self._started = asyncio.get_running_loop().create_future()
        self._session = aiohttp.ClientSession()
        ws = self._ws = await self._session.ws_connect(url, protocols=(SUBPROTOCOL,))
        self._tasks = [
            asyncio.create_task(self._read(ws), name="ws-media-reader"),
            asyncio.create_task(self._send(ws), name="ws-media-sender"),
        ]
        async with asyncio.timeout(timeout_s):
            start = await self._started
        expected = (self._codec.name, self._codec.frame_bytes, FRAME_MS)
        if (start.format, start.optimal_frame_size, start.ptime) != expected:
            raise ValueError(f"MEDIA_START {start} is not the {expected} asked for")
        self._wake.set()  # audio may have been queued before the connection
        return start

    @property
    def stats(self) -> MediaStats:
        c = self._counters
        dropped = {
            "malformed": c.malformed,
            "unknown": c.unknown,
            "stale_mark": self._out.stale_marks,
            "overflow": self._taps.total_overflow,
        }
        return MediaStats(c.frames_in, self._out.frames_sent, dropped)

    @property
    def counters(self) -> _Counters:
        return self._counters

    # inbound

    def tap(self, max_frames: int = DEFAULT_TAP_FRAMES) -> FrameTap:
        return self._taps.open(max_frames)

    def tap_played(self, max_frames: int = DEFAULT_TAP_FRAMES) -> FrameTap:
        """A new reader of the frames Asterisk plays from now on, as their marks come back."""
        return self._played_taps.open(max_frames)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for message in ws:
                if message.type is aiohttp.WSMsgType.BINARY:
                    self._on_media(message.data)
                elif message.type is aiohttp.WSMsgType.TEXT:
                    self._on_text(message.data)
        finally:
            if not self._closed:
                log.info("media websocket closed by Asterisk (code %s)", ws.close_code)
            if self._started is not None and not self._started.done():
                self._started.set_exception(ConnectionError("closed before MEDIA_START"))
            self._taps.close()  # nothing more will be heard: the readers end
            self._played_taps.close()
            self._drained.set()

    def _on_media(self, data: bytes) -> None:
        codec = self._codec
        for payload in self._framer.feed(data):
            count = self._counters.frames_in
            self._counters.frames_in += 1
            frame = MediaFrame(
                codec.decode(payload), payload, count & 0xFFFF,
                count * codec.frame_samples & 0xFFFFFFFF, sample_rate=codec.sample_rate,
            )  # fmt: skip
            self._taps.publish(frame)

    def _on_text(self, text: str) -> None:
        try:
            event = parse_event(text)
        except ValueError as exc:
            self._counters.malformed += 1
            log.debug("media websocket: dropped a malformed message: %s", exc)
            if text.startswith("MEDIA_START") and self._started and not self._started.done():
                self._started.set_exception(ValueError(OLD_ASTERISK))
            return
        if isinstance(event, MarkProcessed):
            if self._out.mark_processed(event.correlation_id):
                self._publish_played(self._out.take_played())
                self._progressed()
            else:
                log.debug("media websocket: stale mark %r", event.correlation_id)
        elif isinstance(event, DtmfEnd):
            self._counters.keys += 1
            self._key(event.digit)
        elif isinstance(event, MediaXoff):
            self._counters.xoff += 1
            self._out.xoff()
        elif isinstance(event, MediaXon):
            self._out.xon()
            self._wake.set()
        elif isinstance(event, MediaStart):
            if self._started is not None and not self._started.done():
                self._started.set_result(event)
        elif isinstance(event, AsteriskError):
            self._counters.refused += 1
            log.warning("media websocket: Asterisk refused a command: %s", event.text)
        elif isinstance(event, UnknownEvent):
            self._counters.unknown += 1
            log.debug("media websocket: unknown event %r ignored", event.name)

    def _publish_played(self, payloads: list[bytes]) -> None:
        codec, now = self._codec, time.monotonic()
        for payload in payloads:
            stamp = self._played_clock.stamp(len(payload) // codec.sample_width, now)
            count = self._frames_played & 0xFFFF
            self._frames_played += 1
            if self._played_taps.listening:
                pcm = codec.decode(payload)
                self._played_taps.publish(
                    MediaFrame(pcm, payload, count, stamp, now, codec.sample_rate)
                )

    def _key(self, digit: str) -> None:
        if self.on_key is None:
            return
        try:
            self.on_key(digit)
        except Exception:  # the key's handler failing must not stop the call's audio
            log.exception("media websocket: the key handler failed on %r", digit)

    # outbound

    @property
    def played(self) -> int:
        """Stream position Asterisk has played, by its marks (what the caller has heard)."""
        return self._out.played

    @property
    def queued(self) -> int:
        return self._out.queued

    def play(self, pcm: Pcm) -> int:
        """Queue PCM at the port's rate, of any length; return the stream position at its end."""
        if self._closed:
            return self._out.played + self._out.queued
        return self._queued_up_to(self._out.add_pcm(pcm))

    def play_payload(self, payload: bytes) -> int:
        """Queue audio already in the wire codec; a short tail is padded."""
        if self._closed:
            return self._out.played + self._out.queued
        return self._queued_up_to(self._out.add_payload(payload))

    def flush(self) -> int:
        """Drop everything not played: FLUSH_MEDIA goes out before anything else, at once (the
        sender is woken now); return the position playback stopped at."""
        cut = self._out.flush()
        self._drained.set()
        self._wake.set()
        return cut

    async def drained(self) -> None:
        """Wait until Asterisk has played everything queued (or it was flushed)."""
        await self._drained.wait()

    def _queued_up_to(self, position: int) -> int:
        if not self._out.idle:
            self._drained.clear()
            self._wake.set()
        return position

    def _progressed(self) -> None:
        if self._out.idle:
            self._drained.set()
        self._wake.set()  # a slot in Asterisk's queue is free

    async def _send(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                epoch = self._out.epoch
                for message in self._out.take():
                    if isinstance(message, bytes):
                        await ws.send_bytes(message)
                    else:
                        await ws.send_str(message)
                    if self._out.epoch != epoch:
                        break  # flushed meanwhile: the rest is dropped, FLUSH_MEDIA is next
        except (ConnectionError, aiohttp.ClientError) as exc:
            log.debug("media websocket: cannot send: %s", exc)  # closing: the reader says so

    async def close(self) -> None:
        """Close the connection (Asterisk then hangs its channel up) and end every tap."""
        if self._closed:
            return
        self._closed = True
        self._out.flush()
        if self._ws is not None:
            with contextlib.suppress(TimeoutError, aiohttp.ClientError, ConnectionError):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await self._ws.close()
        await cancel_and_wait(*self._tasks)
        if self._session is not None:
            await self._session.close()
        self._taps.close()
        self._played_taps.close()
        self._drained.set()


@dataclass(frozen=True)
class WebSocketLink:
    """A ``WebSocketPort`` with the externalMedia request for it and where to dial."""

    port: WebSocketPort
    external_media: ExternalMediaRequest
    media_url: str  # Asterisk's /media/ prefix; the connection id completes it

    async def connect(self, channel_vars: Mapping[str, str]) -> str:
        connection_id = channel_vars.get(CONNECTION_ID_VAR)
        if not connection_id:
            raise ValueError(f"externalMedia gave no {CONNECTION_ID_VAR}: {channel_vars}")
        frame_size = channel_vars.get(FRAME_SIZE_VAR)
        if frame_size != str(self.port.codec.frame_bytes):
            raise ValueError(f"{FRAME_SIZE_VAR}={frame_size!r}: not 20 ms of the format asked")
        url = self.media_url + quote(connection_id, safe="")
        try:
            start = await self.port.connect(url)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise ValueError(f"media websocket {url}: {exc!r}") from None
        return f"websocket {start.format} {url}"


def media_url(ari_url: str) -> str:
    """Where chan_websocket listens: the ARI server's own host and port, under /media/."""
    url = yarl.URL(ari_url.rstrip("/"))
    scheme = {"http": "ws", "https": "wss"}.get(url.scheme, url.scheme)
    return str(url.with_scheme(scheme)) + "/media/"


async def open_websocket(settings: MediaSettings, ari: AriSettings) -> WebSocketLink:
    """The "websocket" transport: chan_websocket, the app connecting to Asterisk."""
    codec = codec_for(settings.codec)
    port = WebSocketPort(codec, max(1, settings.websocket_ahead_ms // FRAME_MS))
    request = ExternalMediaRequest(None, codec.name, "none", "websocket", _OPTIONS)
    return WebSocketLink(port, request, media_url(ari.url))
