import random
import re

import pytest

from ari_offload.media.rtp import RtpExtension, RtpPacket, seq_add, seq_diff, seq_lt

# What Asterisk's ExternalMedia sends: V=2, PT 0 (PCMU), seq 0x1a2b, ts 0xa000, random SSRC.
ASTERISK_HEADER = bytes.fromhex("80001a2b0000a00012345678")
PAYLOAD = bytes(range(160))


def test_parse_reads_every_header_field() -> None:
    packet = RtpPacket.parse(ASTERISK_HEADER + PAYLOAD)

    assert packet == RtpPacket(
        payload_type=0, sequence_number=0x1A2B, timestamp=0xA000, ssrc=0x12345678, payload=PAYLOAD
    )
    assert not packet.marker
    assert packet.csrc == ()
    assert packet.extension is None


def test_parse_reads_marker_csrc_extension_and_padding() -> None:
    data = (
        bytes.fromhex("b2 88 0001 00000002 00000003")  # P, X, CC=2; M, PT 8
        + bytes.fromhex("0000000a 0000000b")  # CSRCs
        + bytes.fromhex("bede 0001 10ff0000")  # RFC 8285 one-byte extension, one word
        + b"abc"
        + bytes.fromhex("000003")  # 3 bytes of padding
    )

    packet = RtpPacket.parse(data)

    assert packet.marker
    assert packet.payload_type == 8
    assert packet.csrc == (10, 11)
    assert packet.extension == RtpExtension(0xBEDE, bytes.fromhex("10ff0000"))
    assert packet.payload == b"abc"
    assert packet.padding == bytes.fromhex("000003")


@pytest.mark.parametrize(
    "data",
    [
        ASTERISK_HEADER + PAYLOAD,
        ASTERISK_HEADER,  # empty payload
        bytes.fromhex("80 80 ffff ffffffff ffffffff") + PAYLOAD,  # marker, max values
        bytes.fromhex("81 00 0001 00000002 00000003 deadbeef") + b"x",
        bytes.fromhex("90 00 0001 00000002 00000003 1000 0000") + b"x",  # empty extension
        bytes.fromhex("90 00 0001 00000002 00000003 1000 0002 0102030405060708") + b"x",
        bytes.fromhex("a0 00 0001 00000002 00000003") + b"x" + bytes.fromhex("aabb03"),
        bytes.fromhex("a0 00 0001 00000002 00000003 01"),  # padding only, no payload
        bytes.fromhex("bf 7f 0001 00000002 00000003") + bytes(60) + bytes(8) + b"p" + b"\x01",
    ],
)
def test_serialising_a_parsed_packet_gives_back_the_same_bytes(data: bytes) -> None:
    assert bytes(RtpPacket.parse(data)) == data


def test_a_built_packet_survives_the_wire() -> None:
    packet = RtpPacket(
        payload_type=0,
        sequence_number=65535,
        timestamp=2**32 - 160,
        ssrc=1,
        payload=b"\xff" * 160,
        marker=True,
        csrc=(7,),
        extension=RtpExtension(0x1000, b"\x00" * 4),
        padding=b"\x00\x02",
    )

    assert RtpPacket.parse(bytes(packet)) == packet


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "RTP packet too short: 0 bytes, the header needs 12"),
        (ASTERISK_HEADER[:11], "RTP packet too short: 11 bytes, the header needs 12"),
        (b"\x40" + ASTERISK_HEADER[1:], "RTP version must be 2, got 1"),
        (b"\x00" + ASTERISK_HEADER[1:] + PAYLOAD, "RTP version must be 2, got 0"),
        (
            b"\x83" + ASTERISK_HEADER[1:] + b"\x00" * 8,
            "RTP CSRC list overruns the packet: 3 CSRCs need 24 bytes, the packet has 20",
        ),
        (
            b"\x90" + ASTERISK_HEADER[1:] + b"\x10\x00",
            "RTP extension header overruns the packet: it needs 16 bytes, the packet has 14",
        ),
        (
            b"\x90" + ASTERISK_HEADER[1:] + bytes.fromhex("1000 0002 01020304"),
            "RTP extension data overruns the packet: 2 words need 24 bytes, the packet has 20",
        ),
        (b"\xa0" + ASTERISK_HEADER[1:], "RTP padding flag set but nothing follows the header"),
        (
            b"\xa0" + ASTERISK_HEADER[1:] + b"abc\x00",
            "RTP padding flag set but the padding count is 0",
        ),
        (
            b"\xa0" + ASTERISK_HEADER[1:] + b"abc\x05",
            "RTP padding overruns the packet: 5 bytes of padding, 4 bytes after the header",
        ),
    ],
)
def test_malformed_packets_raise_value_error_with_an_exact_message(
    data: bytes, message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        RtpPacket.parse(data)


def test_random_bytes_either_round_trip_or_raise_value_error() -> None:
    rng = random.Random(1234)
    parsed = 0
    for _ in range(5000):
        data = bytes([0x80 | rng.getrandbits(6)]) + rng.randbytes(rng.randrange(0, 80))
        try:
            packet = RtpPacket.parse(data)
        except ValueError:
            continue
        parsed += 1
        assert bytes(packet) == data
    assert parsed > 500  # the generator does produce valid packets


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"payload_type": 128}, "payload type 128 is not in 0..127"),
        ({"sequence_number": 65536}, "sequence number 65536 is not in 0..65535"),
        ({"ssrc": -1}, "timestamp and SSRC must be unsigned 32-bit values"),
        ({"csrc": tuple(range(16))}, "at most 15 CSRCs, each an unsigned 32-bit value"),
        (
            {"padding": b"\x00\x00\x02"},
            "the last padding octet must be the padding length 3, got 2",
        ),
    ],
)
def test_out_of_range_fields_are_refused(fields: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"payload_type": 0, "sequence_number": 0, "timestamp": 0, "ssrc": 0}

    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        RtpPacket(**(base | fields))  # type: ignore[arg-type]


def test_extension_data_must_be_whole_words() -> None:
    with pytest.raises(ValueError, match="whole 32-bit words"):
        RtpExtension(0xBEDE, b"\x00" * 3)


def test_sequence_arithmetic_wraps_at_65535() -> None:
    assert seq_add(65535, 1) == 0
    assert seq_add(65530, 10) == 4
    assert seq_add(0, -1) == 65535
    assert seq_diff(0, 65535) == 1
    assert seq_diff(65535, 0) == -1
    assert seq_diff(4, 65530) == 10
    assert seq_diff(100, 100) == 0
    assert seq_lt(65535, 0)
    assert not seq_lt(0, 65535)
    assert seq_lt(10, 11)
    assert not seq_lt(11, 11)
