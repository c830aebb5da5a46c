import random

import numpy as np
import pytest

from ari_offload.media.packetizer import FrameSplitter, RtpPacketizer
from ari_offload.media.rtp import RtpPacket


def ramp(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.int16)


def test_splitter_returns_whole_frames_and_keeps_the_tail() -> None:
    splitter = FrameSplitter(160)
    pcm = ramp(1000)

    frames = [f for i in range(0, 1000, 70) for f in splitter.feed(pcm[i : i + 70])]

    assert [len(f) for f in frames] == [160] * 6
    assert np.array_equal(np.concatenate(frames), pcm[:960])
    assert splitter.pending == 40


def test_splitter_flush_pads_the_tail_with_silence() -> None:
    splitter = FrameSplitter(160)
    splitter.feed(ramp(200))

    (last,) = splitter.flush()

    assert np.array_equal(last[:40], ramp(200)[160:])
    assert not last[40:].any()
    assert len(last) == 160
    assert splitter.pending == 0
    assert splitter.flush() == []


def test_splitter_flush_without_pad_returns_the_short_tail() -> None:
    splitter = FrameSplitter(160)
    splitter.feed(ramp(170))

    assert [len(f) for f in splitter.flush(pad=False)] == [10]


def test_splitter_frames_do_not_alias_the_input() -> None:
    pcm = ramp(160)
    (frame,) = FrameSplitter(160).feed(pcm)

    pcm[:] = 0

    assert frame[5] == 5


def packets(packetizer: RtpPacketizer, n: int) -> list[RtpPacket]:
    return [packetizer.packet(b"\xff" * 160) for _ in range(n)]


def test_packetizer_numbers_frames_and_marks_only_the_first() -> None:
    out = packets(RtpPacketizer(0, ssrc=7, seq=100, timestamp=1000), 3)

    assert [(p.sequence_number, p.timestamp, p.marker) for p in out] == [
        (100, 1000, True),
        (101, 1160, False),
        (102, 1320, False),
    ]
    assert {(p.ssrc, p.payload_type) for p in out} == {(7, 0)}


def test_new_talkspurt_marks_the_next_packet_and_skips_the_idle_time() -> None:
    packetizer = RtpPacketizer(8, ssrc=1, seq=0, timestamp=0)
    packets(packetizer, 2)

    packetizer.new_talkspurt(idle_samples=800)
    after = packets(packetizer, 2)

    assert [(p.sequence_number, p.timestamp, p.marker) for p in after] == [
        (2, 1120, True),
        (3, 1280, False),
    ]


def test_sequence_and_timestamp_wrap() -> None:
    out = packets(RtpPacketizer(0, ssrc=1, seq=65535, timestamp=2**32 - 160), 2)

    assert [(p.sequence_number, p.timestamp) for p in out] == [(65535, 2**32 - 160), (0, 0)]


def test_start_values_come_from_the_injected_rng() -> None:
    a = RtpPacketizer(0, rng=random.Random(42))
    b = RtpPacketizer(0, rng=random.Random(42))
    c = RtpPacketizer(0, rng=random.Random(43))

    assert (a.ssrc, a.sequence_number, a.timestamp) == (b.ssrc, b.sequence_number, b.timestamp)
    assert (a.ssrc, a.sequence_number, a.timestamp) != (c.ssrc, c.sequence_number, c.timestamp)


def test_default_start_values_differ_between_streams() -> None:
    ssrcs = {RtpPacketizer(0).ssrc for _ in range(5)}

    assert len(ssrcs) == 5


def test_frame_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="frame_samples must be at least 1"):
        FrameSplitter(0)
