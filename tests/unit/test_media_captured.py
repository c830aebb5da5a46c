"""RTP exactly as a real Asterisk 22 sent it (captured on the test bed)."""

from __future__ import annotations

import itertools
from pathlib import Path

from ari_offload.media.g711 import ULAW
from ari_offload.media.jitter import JitterBuffer
from ari_offload.media.rtp import RtpPacket, seq_add

CAPTURE = Path(__file__).parent.parent / "fixtures" / "rtp" / "asterisk_to_caller_ulaw.hex"


def captured() -> list[bytes]:
    lines = CAPTURE.read_text().splitlines()
    return [bytes.fromhex(line) for line in lines if line and not line.startswith("#")]


def test_asterisk_packets_parse_and_serialise_to_the_same_bytes() -> None:
    datagrams = captured()
    assert len(datagrams) == 6
    for data in datagrams:
        packet = RtpPacket.parse(data)
        assert bytes(packet) == data
        assert packet.payload_type == 0
        assert len(packet.payload) == 160


def test_asterisk_packets_follow_on_in_sequence_and_time() -> None:
    packets = [RtpPacket.parse(d) for d in captured()]
    for before, after in itertools.pairwise(packets):
        assert after.sequence_number == seq_add(before.sequence_number, 1)
        assert (after.timestamp - before.timestamp) % 2**32 == 160
        assert after.ssrc == before.ssrc


def test_asterisk_packets_pass_the_jitter_buffer_in_order_and_decode() -> None:
    packets = [RtpPacket.parse(d) for d in captured()]
    buffer = JitterBuffer(4)
    arrival = [packets[0], packets[2], packets[1], packets[4], packets[3], packets[5]]
    out = [p for packet in arrival for p in buffer.add(packet)]
    assert out == packets
    pcm = ULAW.decode(b"".join(p.payload for p in out))
    assert len(pcm) == 6 * 160
    assert int(abs(pcm.astype(int)).max()) > 1000  # speech, not silence
