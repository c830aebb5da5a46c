"""RtpEndpoint against a plain UDP socket playing Asterisk, on 127.0.0.1 only."""

import asyncio
import logging
import random
import socket
from collections.abc import AsyncIterator, Callable, Iterator

import numpy as np
import pytest

from ari_offload.media.g711 import codec_for, ulaw_decode, ulaw_encode
from ari_offload.media.port import FrameTap, MediaFrame
from ari_offload.media.rtp import RtpPacket
from ari_offload.media.udp import RtpEndpoint

ASTERISK_SSRC = 0x5EED


@pytest.fixture
def asterisk() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    yield sock
    sock.close()


@pytest.fixture
async def endpoint(asterisk: socket.socket) -> AsyncIterator[RtpEndpoint]:
    ep = await RtpEndpoint.open("127.0.0.1", rng=random.Random(1))
    ep.set_remote(*asterisk.getsockname())
    yield ep
    await ep.close()


@pytest.fixture
def heard(endpoint: RtpEndpoint) -> FrameTap:
    """A tap opened before the test sends anything: frames with no tap open are dropped."""
    return endpoint.tap()


def rtp(seq: int, payload: bytes, ssrc: int = ASTERISK_SSRC) -> bytes:
    packet = RtpPacket(0, seq, (seq * 160) & 0xFFFFFFFF, ssrc, payload)
    return bytes(packet)


def payloads(n: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(160) for _ in range(n)]


async def take(tap: FrameTap, n: int, seconds: float = 3.0) -> list[MediaFrame]:
    out: list[MediaFrame] = []
    async with asyncio.timeout(seconds):
        async for frame in tap:
            out.append(frame)
            if len(out) == n:
                break
    return out


async def recv(sock: socket.socket, n: int, seconds: float = 5.0) -> list[RtpPacket]:
    loop = asyncio.get_running_loop()
    out: list[RtpPacket] = []
    async with asyncio.timeout(seconds):
        while len(out) < n:
            data, _ = await loop.sock_recvfrom(sock, 2048)
            out.append(RtpPacket.parse(data))
    return out


async def recv_for(sock: socket.socket, seconds: float) -> list[RtpPacket]:
    """Everything that arrives within ``seconds``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    out = []
    while (left := deadline - loop.time()) > 0:
        try:
            data, _ = await asyncio.wait_for(loop.sock_recvfrom(sock, 2048), left)
        except TimeoutError:
            break
        out.append(RtpPacket.parse(data))
    return out


async def wait_until(check: Callable[[], bool], seconds: float = 3.0) -> None:
    async with asyncio.timeout(seconds):
        # The stats counters have no event to wait on, so the test polls them.
        while not check():
            await asyncio.sleep(0.005)


# inbound


async def test_inbound_payloads_arrive_byte_exact_and_decoded(
    endpoint: RtpEndpoint, heard: FrameTap, asterisk: socket.socket
) -> None:
    sent = payloads(20)
    for i, payload in enumerate(sent):
        asterisk.sendto(rtp(1000 + i, payload), endpoint.local_address)

    frames = await take(heard, 20)

    assert [f.payload for f in frames] == sent
    assert [f.sequence_number for f in frames] == list(range(1000, 1020))
    assert all(np.array_equal(f.pcm, ulaw_decode(f.payload)) for f in frames)
    assert {f.pcm.shape for f in frames} == {(160,)}
    assert endpoint.rtp_stats.received == 20


async def test_inbound_reordered_packets_come_out_in_order(
    endpoint: RtpEndpoint, heard: FrameTap, asterisk: socket.socket
) -> None:
    sent = payloads(8)
    for i in [0, 2, 1, 3, 5, 4, 7, 6]:
        asterisk.sendto(rtp(65532 + i & 0xFFFF, sent[i]), endpoint.local_address)

    frames = await take(heard, 8)

    assert [f.payload for f in frames] == sent
    assert [f.sequence_number for f in frames] == [65532, 65533, 65534, 65535, 0, 1, 2, 3]
    assert endpoint.rtp_stats.lost == 0


async def test_garbage_from_a_foreign_port_is_ignored_while_the_stream_goes_on(
    endpoint: RtpEndpoint, heard: FrameTap, asterisk: socket.socket
) -> None:
    sent = payloads(10)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as intruder:
        for i, payload in enumerate(sent):
            asterisk.sendto(rtp(i, payload), endpoint.local_address)
            intruder.sendto(b"garbage" * i, endpoint.local_address)
            intruder.sendto(rtp(i + 5, b"\x00" * 160, ssrc=666), endpoint.local_address)

        frames = await take(heard, 10)
        await wait_until(lambda: endpoint.rtp_stats.foreign == 20)

    assert [f.payload for f in frames] == sent
    assert endpoint.rtp_stats.received == 10
    assert endpoint.rtp_stats.malformed == 0


async def test_malformed_datagrams_from_the_remote_are_counted_and_logged(
    endpoint: RtpEndpoint,
    heard: FrameTap,
    asterisk: socket.socket,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="ari_offload.media")
    sent = payloads(4)
    asterisk.sendto(rtp(0, sent[0]), endpoint.local_address)
    asterisk.sendto(b"\x00not rtp at all", endpoint.local_address)
    asterisk.sendto(b"\x80", endpoint.local_address)
    for i in (1, 2, 3):
        asterisk.sendto(rtp(i, sent[i]), endpoint.local_address)

    frames = await take(heard, 4)

    assert [f.payload for f in frames] == sent
    assert endpoint.rtp_stats.malformed == 2
    assert "RTP version must be 2, got 0" in caplog.text
    assert "RTP packet too short: 1 bytes" in caplog.text


async def test_before_set_remote_every_datagram_is_foreign(asterisk: socket.socket) -> None:
    ep = await RtpEndpoint.open()
    try:
        for i in range(3):
            asterisk.sendto(rtp(i, b"\xff" * 160), ep.local_address)
        await wait_until(lambda: ep.rtp_stats.foreign == 3)
        assert ep.rtp_stats.received == 0
    finally:
        await ep.close()


async def test_packets_held_behind_a_gap_come_out_when_the_stream_pauses(
    endpoint: RtpEndpoint, heard: FrameTap, asterisk: socket.socket
) -> None:
    sent = payloads(3)
    asterisk.sendto(rtp(0, sent[0]), endpoint.local_address)
    asterisk.sendto(rtp(2, sent[2]), endpoint.local_address)  # 1 never comes

    frames = await take(heard, 2)

    assert [f.sequence_number for f in frames] == [0, 2]
    assert endpoint.rtp_stats.lost == 1


async def test_a_slow_consumer_loses_the_oldest_frames_not_memory(
    asterisk: socket.socket,
) -> None:
    ep = await RtpEndpoint.open()
    ep.set_remote(*asterisk.getsockname())
    slow = ep.tap(max_frames=5)
    try:
        for i in range(20):
            asterisk.sendto(rtp(i, bytes([i]) * 160), ep.local_address)
        await wait_until(lambda: ep.rtp_stats.received == 20)

        frames = await take(slow, 5)

        assert [f.sequence_number for f in frames] == list(range(15, 20))
        assert ep.rtp_stats.overflow == 15
        assert ep.stats.dropped["overflow"] == 15
    finally:
        await ep.close()


async def test_two_taps_each_receive_every_frame(
    endpoint: RtpEndpoint, asterisk: socket.socket
) -> None:
    conversation, recorder = endpoint.tap(), endpoint.tap()
    sent = payloads(10)
    for i, payload in enumerate(sent):
        asterisk.sendto(rtp(i, payload), endpoint.local_address)

    first, second = await take(conversation, 10), await take(recorder, 10)

    assert [f.payload for f in first] == sent
    assert [f.payload for f in second] == sent
    assert endpoint.stats.frames_in == 10


async def test_frames_with_no_tap_open_are_not_delivered_later(
    endpoint: RtpEndpoint, asterisk: socket.socket
) -> None:
    sent = payloads(10)
    for i in range(5):  # nobody listens (e.g. a `talk` action): dropped, not kept as stale
        asterisk.sendto(rtp(i, sent[i]), endpoint.local_address)
    await wait_until(lambda: endpoint.rtp_stats.received == 5)
    later = endpoint.tap()
    for i in range(5, 10):
        asterisk.sendto(rtp(i, sent[i]), endpoint.local_address)

    frames = await take(later, 5)

    assert [f.sequence_number for f in frames] == list(range(5, 10))
    assert [f.payload for f in frames] == sent[5:]
    assert endpoint.stats.dropped["overflow"] == 0  # not a loss: nobody was listening


async def test_a_closed_tap_stops_receiving_and_the_others_go_on(
    endpoint: RtpEndpoint, asterisk: socket.socket
) -> None:
    stays, leaves = endpoint.tap(), endpoint.tap(max_frames=2)
    leaves.close()
    sent = payloads(6)
    for i, payload in enumerate(sent):
        asterisk.sendto(rtp(i, payload), endpoint.local_address)

    assert [f.payload for f in await take(stays, 6)] == sent
    assert await take(leaves, 1) == []
    assert endpoint.stats.dropped["overflow"] == 0


async def test_other_payload_types_are_ignored_without_stalling_the_stream(
    endpoint: RtpEndpoint, heard: FrameTap, asterisk: socket.socket
) -> None:
    dtmf = RtpPacket(101, 1, 160, ASTERISK_SSRC, b"\x05\x0a\x00\xa0")
    asterisk.sendto(rtp(0, b"\x01" * 160), endpoint.local_address)
    asterisk.sendto(bytes(dtmf), endpoint.local_address)
    asterisk.sendto(rtp(2, b"\x02" * 160), endpoint.local_address)

    frames = await take(heard, 2)

    assert [f.sequence_number for f in frames] == [0, 2]
    assert endpoint.rtp_stats.ignored == 1
    assert endpoint.rtp_stats.lost == 0


# outbound


async def test_outbound_payload_goes_out_byte_exact_as_a_numbered_stream(
    endpoint: RtpEndpoint, asterisk: socket.socket
) -> None:
    data = b"".join(payloads(10))

    endpoint.play_payload(data)
    got = await recv(asterisk, 10)

    assert b"".join(p.payload for p in got) == data
    assert [p.marker for p in got] == [True] + [False] * 9
    assert [p.sequence_number - got[0].sequence_number & 0xFFFF for p in got] == list(range(10))
    assert [p.timestamp - got[0].timestamp & 0xFFFFFFFF for p in got] == list(range(0, 1600, 160))
    assert {(p.payload_type, p.ssrc) for p in got} == {(0, got[0].ssrc)}
    assert endpoint.rtp_stats.sent == 10


async def test_played_pcm_is_encoded_and_the_tail_padded(
    endpoint: RtpEndpoint, asterisk: socket.socket
) -> None:
    pcm = (np.sin(np.arange(1000) / 5) * 9000).astype(np.int16)

    position = endpoint.play(pcm)
    got = await recv(asterisk, 7)
    await endpoint.drained()

    expected = ulaw_encode(np.concatenate([pcm, np.zeros(120, np.int16)]))
    assert b"".join(p.payload for p in got) == expected
    assert position == 1000
    assert endpoint.played == 1000
    assert endpoint.queued == 0


async def test_pcm_tail_goes_out_before_a_later_payload(
    endpoint: RtpEndpoint, asterisk: socket.socket
) -> None:
    pcm = np.full(100, 1000, np.int16)

    positions = [endpoint.play(pcm), endpoint.play_payload(b"\x42" * 160)]
    got = await recv(asterisk, 2)

    assert positions == [100, 260]
    assert got[0].payload == ulaw_encode(pcm) + b"\xff" * 60
    assert got[1].payload == b"\x42" * 160


async def test_short_payload_tail_is_padded_with_the_codec_silence(
    asterisk: socket.socket,
) -> None:
    ep = await RtpEndpoint.open(codec=codec_for("alaw"))
    ep.set_remote(*asterisk.getsockname())
    try:
        ep.play_payload(b"\x2a" * 200)
        got = await recv(asterisk, 2)
    finally:
        await ep.close()

    assert got[1].payload == b"\x2a" * 40 + b"\xd5" * 120
    assert {p.payload_type for p in got} == {8}


async def test_audio_played_before_set_remote_waits_for_it(asterisk: socket.socket) -> None:
    ep = await RtpEndpoint.open()
    try:
        ep.play_payload(b"\x11" * 320)
        await asyncio.sleep(0.1)
        assert ep.rtp_stats.sent == 0

        ep.set_remote(*asterisk.getsockname())
        got = await recv(asterisk, 2)
    finally:
        await ep.close()

    assert [p.payload for p in got] == [b"\x11" * 160] * 2


async def test_output_is_paced_at_50_packets_per_second(
    endpoint: RtpEndpoint, asterisk: socket.socket
) -> None:
    endpoint.play_payload(b"\x55" * 160 * 100)

    first_half_second = await recv_for(asterisk, 0.5)
    rest = await recv(asterisk, 100 - len(first_half_second))

    # About 25 in 0.5 s: far from all 100 at once, and not stalled.
    assert 15 <= len(first_half_second) <= 35
    seqs = [p.sequence_number for p in first_half_second + rest]
    assert [s - seqs[0] & 0xFFFF for s in seqs] == list(range(100))


async def test_flush_stops_output_within_one_frame(
    endpoint: RtpEndpoint, asterisk: socket.socket
) -> None:
    position = endpoint.play_payload(b"\x55" * 160 * 100)
    await recv(asterisk, 5)

    cut = endpoint.flush()
    sent_at_flush = endpoint.rtp_stats.sent
    after = await recv_for(asterisk, 0.2)

    assert endpoint.rtp_stats.sent == sent_at_flush  # nothing more left the socket
    assert len(after) <= 1  # at most one already in flight
    assert cut == endpoint.played == sent_at_flush * 160 < position
    assert endpoint.queued == 0
    await asyncio.wait_for(endpoint.drained(), 1)


async def test_position_restarts_from_what_was_sent_after_a_flush(
    endpoint: RtpEndpoint, asterisk: socket.socket
) -> None:
    endpoint.play_payload(b"\x55" * 160 * 50)
    await recv(asterisk, 3)
    sent = endpoint.flush()

    position = endpoint.play(np.zeros(320, np.int16))
    await endpoint.drained()

    assert position == sent + 320
    assert endpoint.played == position


async def test_a_talkspurt_after_idle_gets_the_marker_and_a_timestamp_jump(
    endpoint: RtpEndpoint, asterisk: socket.socket
) -> None:
    endpoint.play_payload(b"\x01" * 480)
    first = await recv(asterisk, 3)
    await asyncio.sleep(0.2)
    endpoint.play_payload(b"\x02" * 480)
    second = await recv(asterisk, 3)

    assert [p.marker for p in first + second] == [True, False, False, True, False, False]
    assert second[0].sequence_number == first[-1].sequence_number + 1 & 0xFFFF
    ts_gap = second[0].timestamp - first[-1].timestamp & 0xFFFFFFFF
    assert ts_gap >= 160 + 1000  # the 200 ms of silence (1600 samples), give or take
    assert endpoint.rtp_stats.sent == 6


async def test_played_frames_reach_tap_played_as_sent_with_their_rtp_timestamps(
    endpoint: RtpEndpoint, asterisk: socket.socket
) -> None:
    played = endpoint.tap_played()
    endpoint.play_payload(b"\x01" * 320)
    first = await recv(asterisk, 2)
    await asyncio.sleep(0.2)
    endpoint.play_payload(b"\x02" * 160)
    second = await recv(asterisk, 1)

    frames = await take(played, 3)
    sent = first + second
    assert [f.payload for f in frames] == [p.payload for p in sent]
    assert [f.timestamp for f in frames] == [p.timestamp for p in sent], "the outbound clock"
    assert [f.sequence_number for f in frames] == [p.sequence_number for p in sent]
    assert np.array_equal(frames[2].pcm, ulaw_decode(b"\x02" * 160))
    assert frames[2].received_at - frames[1].received_at >= 0.2  # when each was played


async def test_nothing_is_sent_when_idle(endpoint: RtpEndpoint, asterisk: socket.socket) -> None:
    assert await recv_for(asterisk, 0.1) == []
    assert endpoint.rtp_stats.sent == 0


# lifecycle


async def test_set_remote_needs_a_numeric_address(endpoint: RtpEndpoint) -> None:
    with pytest.raises(ValueError, match="'localhost' does not appear to be an IPv4 or IPv6"):
        endpoint.set_remote("localhost", 4000)


async def test_close_ends_every_tap_and_is_idempotent(asterisk: socket.socket) -> None:
    ep = await RtpEndpoint.open()
    ep.set_remote(*asterisk.getsockname())
    reader = asyncio.create_task(take(ep.tap(), 1000))
    played = asyncio.create_task(take(ep.tap_played(), 1000))
    await asyncio.sleep(0.01)

    await ep.close()
    await ep.close()

    assert await asyncio.wait_for(reader, 1) == []
    assert await asyncio.wait_for(played, 1) == []
    assert await take(ep.tap(), 1) == []  # a tap opened after close is already at its end
    assert ep.play(np.zeros(160, np.int16)) == 0  # a no-op once closed
