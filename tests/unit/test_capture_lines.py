"""tshark's field lines as the test bed's captures read them: with the source address (live
captures, RtpCapture) and without it (dumpcap files read back, testbed.wire)."""

from __future__ import annotations

from ari_offload.media.rtp import RtpPacket
from testbed.capture import _parse_line

PACKET = bytes(RtpPacket(payload_type=0, sequence_number=7, timestamp=160, ssrc=1,
                         payload=b"\xff" * 160))  # fmt: skip


def test_lines_with_and_without_the_source_address_parse() -> None:
    fields = ["1796652662.172816", "20000", "6000", PACKET.hex()]

    with_ip = _parse_line("\t".join([*fields, "127.0.0.3"]) + "\n")
    without = _parse_line("\t".join(fields) + "\n")

    assert with_ip is not None
    assert without is not None
    assert (with_ip.src_ip, without.src_ip) == ("127.0.0.3", "")
    assert with_ip.data == without.data == PACKET
    assert (with_ip.src_port, with_ip.dst_port, with_ip.packet.sequence_number) == (20000, 6000, 7)


def test_lines_without_a_payload_are_skipped() -> None:
    assert _parse_line("1796652662.1\t20000\t6000\t\t127.0.0.3\n") is None
    assert _parse_line("1796652662.1\t20000\t6000\t\n") is None
