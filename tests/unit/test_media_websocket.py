"""The chan_websocket port against a stand-in Asterisk (a real aiohttp websocket server) that
can misbehave as the real one cannot be made to: garbage, unknown events, odd frame sizes,
the wrong format. The real one is in tests/integration (parametrized by transport)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import numpy as np
import pytest
from aiohttp import web

from ari_offload.config import AriSettings, MediaSettings
from ari_offload.media.g711 import SLIN16, ULAW, Codec, slin_encode
from ari_offload.media.websocket import WebSocketLink, media_url, open_websocket
from ari_offload.media.ws_messages import FLUSH_MEDIA

CONNECTION_ID = "ceb82128-c15a-4fa4-aa19-965f52f0eac0"


class FakeAsterisk:
    """chan_websocket's /media/<id>: MEDIA_START on connect, then whatever the test says.
    With ``auto_marks`` every MARK_MEDIA comes straight back as played."""

    def __init__(self, codec: Codec = ULAW, start: dict[str, Any] | None = None) -> None:
        self.start = start or {
            "format": codec.name, "optimal_frame_size": codec.frame_bytes, "ptime": 20,
        }  # fmt: skip
        self.start_text: str | None = None  # sent instead of the JSON MEDIA_START
        self.auto_marks = True
        self.received: list[bytes | str] = []
        self.headers: dict[str, str] = {}
        self.path = ""
        self.ws: web.WebSocketResponse | None = None
        self.connected = asyncio.Event()
        self.closed = asyncio.Event()
        self.changed = asyncio.Event()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("media",))
        await ws.prepare(request)
        self.ws, self.path, self.headers = ws, request.path, dict(request.headers)
        await ws.send_str(self.start_text or json.dumps({"event": "MEDIA_START", **self.start}))
        self.connected.set()
        async for message in ws:
            data = message.data  # str for TEXT, bytes for BINARY
            self.received.append(data)
            self.changed.set()
            if isinstance(data, str) and self.auto_marks and "MARK_MEDIA" in data:
                mark = json.loads(data)["correlation_id"]
                await self.event("MEDIA_MARK_PROCESSED", correlation_id=mark)
        self.closed.set()
        return ws

    async def event(self, name: str, **fields: Any) -> None:
        assert self.ws is not None
        await self.ws.send_str(json.dumps({"event": name, "channel_id": "m", **fields}))

    async def send(self, data: bytes | str) -> None:
        assert self.ws is not None
        await (self.ws.send_bytes(data) if isinstance(data, bytes) else self.ws.send_str(data))

    def frames(self) -> list[bytes]:
        return [m for m in self.received if isinstance(m, bytes)]

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait (3 s at most) until what the app sent meets ``condition``."""
        async with asyncio.timeout(3.0):
            while not condition():
                self.changed.clear()
                await self.changed.wait()


Connect = Callable[..., Awaitable[tuple[WebSocketLink, FakeAsterisk]]]


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """Open the transport as the app does and connect it to a fresh stand-in Asterisk."""
    runners: list[web.AppRunner] = []
    links: list[WebSocketLink] = []

    async def factory(
        codec: str = "ulaw", asterisk: FakeAsterisk | None = None, ahead_ms: int = 400
    ) -> tuple[WebSocketLink, FakeAsterisk]:
        asterisk = asterisk or FakeAsterisk(SLIN16 if codec == "slin16" else ULAW)
        app = web.Application()
        app.router.add_get("/media/{id}", asterisk.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        port = runner.addresses[0][1]
        media = MediaSettings(transport="websocket", codec=codec, websocket_ahead_ms=ahead_ms)  # type: ignore[arg-type]
        link = await open_websocket(media, AriSettings(url=f"http://127.0.0.1:{port}"))
        links.append(link)
        frame_size = str(link.port.codec.frame_bytes)
        await link.connect(
            {"MEDIA_WEBSOCKET_CONNECTION_ID": CONNECTION_ID,
             "MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE": frame_size}
        )  # fmt: skip
        return link, asterisk

    yield factory
    for link in links:
        await link.port.close()
    for runner in runners:
        await runner.cleanup()


async def test_it_asks_for_a_server_channel_with_json_control_and_dials_media_with_no_secret(
    connect: Connect,
) -> None:
    link, asterisk = await connect()
    request = link.external_media
    assert (request.external_host, request.encapsulation, request.transport) == (
        None, "none", "websocket",
    )  # fmt: skip
    assert dict(request.options) == {"connection_type": "server", "transport_data": "f(json)"}
    assert asterisk.path == f"/media/{CONNECTION_ID}"
    assert asterisk.headers.get("Sec-WebSocket-Protocol") == "media"
    assert "Authorization" not in asterisk.headers  # the id is the key: no ARI password sent


def test_the_media_url_is_the_ari_server_under_media() -> None:
    assert media_url("http://127.0.0.1:8088") == "ws://127.0.0.1:8088/media/"
    assert media_url("https://pbx.example:8089/") == "wss://pbx.example:8089/media/"
    assert media_url("http://pbx:8088/asterisk") == "ws://pbx:8088/asterisk/media/"


async def test_caller_audio_of_any_message_size_arrives_as_whole_frames(connect: Connect) -> None:
    link, asterisk = await connect("slin16")
    pcm = (np.arange(1600) * 13 % 6000 - 3000).astype(np.int16)  # 100 ms at 16 kHz
    with link.port.tap() as tap:
        data = slin_encode(pcm)
        for piece in (data[:1000], data[1000:1001], data[1001:]):  # not on frame edges
            await asterisk.send(piece)
        frames = [await anext(aiter(tap)) for _ in range(5)]
    assert all(f.sample_rate == 16000 and len(f.pcm) == 320 for f in frames)
    assert np.array_equal(np.concatenate([f.pcm for f in frames]), pcm)
    assert [f.sequence_number for f in frames] == [0, 1, 2, 3, 4]
    assert link.port.stats.frames_in == 5


@pytest.mark.parametrize(
    "junk",
    ["garbage", "", "[]", '{"event":"MEDIA_MARK_PROCESSED"}', '{"event":"DTMF_END","digit":"x"}',
     '{"event":"SOMETHING_NEW"}', '{"event":"MEDIA_MARK_PROCESSED","correlation_id":"99"}',
     '{"event":"ERROR","channel_id":"m","error_text":"Unable to parse JSON command"}'],
)  # fmt: skip
async def test_malformed_and_unknown_messages_are_counted_and_the_call_goes_on(
    connect: Connect, junk: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "ari_offload.media")
    link, asterisk = await connect()
    port = link.port
    with port.tap() as tap:
        await asterisk.send(junk)
        await asterisk.send(bytes([0x42]) * 160)
        frame = await anext(aiter(tap))  # audio still flows after the junk
    assert frame.payload == bytes([0x42]) * 160
    dropped = port.stats.dropped
    counted = dropped["malformed"] + dropped["unknown"] + dropped["stale_mark"]
    assert counted + port.counters.refused == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    port.play(np.zeros(160, np.int16))
    await asyncio.wait_for(port.drained(), 3)  # and the outbound side works too


async def test_a_media_start_of_another_format_fails_the_connect(connect: Connect) -> None:
    wrong = FakeAsterisk(start={"format": "ulaw", "optimal_frame_size": 160, "ptime": 20})
    with pytest.raises(ValueError, match=r"MEDIA_START .* is not the .*slin16"):
        await connect("slin16", wrong)


async def test_an_asterisk_without_json_control_messages_is_named_as_too_old(
    connect: Connect,
) -> None:
    old = FakeAsterisk()  # chan_websocket before 22.8 ignores f(json): plain-text events
    old.start_text = "MEDIA_START connection_id:x format:ulaw optimal_frame_size:160 ptime:20"
    with pytest.raises(ValueError, match=r"plain text: .*\(Asterisk 20\.18, 22\.8, 23\.2 or"):
        await connect("ulaw", old)


async def test_channel_variables_without_a_connection_id_fail_the_connect() -> None:
    link = await open_websocket(MediaSettings(transport="websocket"), AriSettings())
    try:
        with pytest.raises(ValueError, match="no MEDIA_WEBSOCKET_CONNECTION_ID"):
            await link.connect({"MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE": "160"})
        vars_ = {"MEDIA_WEBSOCKET_CONNECTION_ID": "x", "MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE": "640"}
        with pytest.raises(ValueError, match="OPTIMAL_FRAME_SIZE='640': not 20 ms"):
            await link.connect(vars_)
    finally:
        await link.port.close()


async def test_nothing_listening_fails_the_connect_as_a_value_error() -> None:
    link = await open_websocket(
        MediaSettings(transport="websocket"), AriSettings(url="http://127.0.0.1:9")
    )
    vars_ = {"MEDIA_WEBSOCKET_CONNECTION_ID": "x", "MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE": "160"}
    try:
        with pytest.raises(ValueError, match=r"media websocket ws://127\.0\.0\.1:9/media/x"):
            await link.connect(vars_)
    finally:
        await link.port.close()


async def test_keys_go_to_the_handler_and_a_failing_handler_does_not_stop_the_audio(
    connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    link, asterisk = await connect()
    keys: list[str] = []

    def handler(key: str) -> None:
        keys.append(key)
        if key == "#":
            raise RuntimeError("boom")

    link.port.on_key = handler
    with link.port.tap() as tap:
        for key in "5#1":
            await asterisk.event("DTMF_END", digit=key)
        await asterisk.send(bytes([0x42]) * 160)
        await anext(aiter(tap))
    assert keys == ["5", "#", "1"]
    assert "the key handler failed on '#'" in caplog.text


async def test_played_follows_the_marks_and_drained_waits_for_the_last(connect: Connect) -> None:
    link, asterisk = await connect()
    asterisk.auto_marks = False
    port = link.port
    end = port.play(np.full(160 * 3, 1000, np.int16))
    await asterisk.until(lambda: len(asterisk.frames()) == 3)
    assert (end, port.played) == (480, 0)  # sent is not played: Asterisk has not said so
    await asterisk.event("MEDIA_MARK_PROCESSED", correlation_id="2")
    await asyncio.sleep(0.05)
    assert port.played == 320
    with pytest.raises(TimeoutError):  # a frame is still to be played
        await asyncio.wait_for(port.drained(), 0.05)
    await asterisk.event("MEDIA_MARK_PROCESSED", correlation_id="3")
    await asyncio.wait_for(port.drained(), 3)
    assert (port.played, port.queued) == (480, 0)


async def test_flush_sends_flush_media_at_once_before_any_new_audio(connect: Connect) -> None:
    link, asterisk = await connect(ahead_ms=200)
    asterisk.auto_marks = False
    port = link.port
    port.play_payload(b"\x01" * 160 * 50)  # a long reply; 10 frames go ahead
    await asterisk.until(lambda: len(asterisk.frames()) == 10)
    await asterisk.event("MEDIA_MARK_PROCESSED", correlation_id="4")
    await asyncio.sleep(0.05)
    assert port.flush() == 640  # cut where Asterisk had played to
    port.play_payload(b"\x02" * 160)
    await asterisk.until(lambda: FLUSH_MEDIA in asterisk.received)
    await asterisk.until(lambda: asterisk.frames()[-1] == b"\x02" * 160)
    after = asterisk.received[asterisk.received.index(FLUSH_MEDIA) :]
    assert [m for m in after if isinstance(m, bytes)] == [b"\x02" * 160]  # none of the old
    assert port.played == 640


async def test_tap_played_gets_what_the_marks_say_was_played_never_what_a_flush_dropped(
    connect: Connect,
) -> None:
    link, asterisk = await connect(ahead_ms=200)
    asterisk.auto_marks = False
    port = link.port
    played = port.tap_played()
    port.play_payload(bytes(range(1, 161)) * 5)
    await asterisk.until(lambda: len(asterisk.frames()) == 5)
    await asterisk.event("MEDIA_MARK_PROCESSED", correlation_id="2")  # frames 1 and 2 heard
    await asyncio.sleep(0.05)
    port.flush()  # the caller barged in: frames 3 to 5 are never heard
    await asyncio.sleep(0.3)  # the stream idles
    port.play_payload(b"\x02" * 160)
    await asterisk.until(lambda: asterisk.frames()[-1] == b"\x02" * 160)
    await asterisk.event("MEDIA_MARK_PROCESSED", correlation_id="6")
    await asyncio.wait_for(port.drained(), 3)
    await port.close()

    frames = [f async for f in played]
    assert [f.payload for f in frames] == [bytes(range(1, 161))] * 2 + [b"\x02" * 160]
    assert [f.timestamp for f in frames[:2]] == [0, 160], "played back to back"
    assert frames[2].timestamp >= 320 + 1600, "the 0.3 s idle before it is counted in"
    assert np.array_equal(frames[2].pcm, ULAW.decode(b"\x02" * 160))
    assert {f.sample_rate for f in frames} == {8000}


async def test_xoff_holds_the_audio_until_xon(connect: Connect) -> None:
    link, asterisk = await connect()
    asterisk.auto_marks = False
    await asterisk.event("MEDIA_XOFF")
    await asyncio.sleep(0.05)
    link.port.play_payload(b"\x01" * 160 * 2)
    await asyncio.sleep(0.1)
    assert asterisk.frames() == []
    await asterisk.event("MEDIA_XON")
    await asterisk.until(lambda: len(asterisk.frames()) == 2)
    assert link.port.counters.xoff == 1


async def test_asterisk_closing_ends_the_taps_and_playout(connect: Connect) -> None:
    link, asterisk = await connect()
    asterisk.auto_marks = False
    with link.port.tap() as tap:
        link.port.play_payload(b"\x01" * 160)
        assert asterisk.ws is not None
        await asterisk.ws.close()
        assert [f async for f in tap] == []  # iteration ends: nothing more will be heard
    await asyncio.wait_for(link.port.drained(), 1)


async def test_close_closes_the_connection_once(connect: Connect) -> None:
    link, asterisk = await connect()
    await link.port.close()
    await asyncio.wait_for(asterisk.closed.wait(), 3)
    await link.port.close()
    assert link.port.play(np.zeros(160, np.int16)) == 0  # a no-op once closed
