import itertools
import random

import pytest

from ari_offload.media.jitter import JitterBuffer, JitterStats
from ari_offload.media.rtp import RtpPacket, seq_add, seq_diff

SSRC = 0x1234


def pkt(seq: int, ssrc: int = SSRC) -> RtpPacket:
    return RtpPacket(
        payload_type=0,
        sequence_number=seq,
        timestamp=(seq * 160) & 0xFFFFFFFF,
        ssrc=ssrc,
        payload=seq.to_bytes(2, "big"),
    )


def seqs(packets: list[RtpPacket]) -> list[int]:
    return [p.sequence_number for p in packets]


def feed(jb: JitterBuffer, order: list[int], ssrc: int = SSRC) -> list[int]:
    out: list[int] = []
    for seq in order:
        out += seqs(jb.add(pkt(seq, ssrc)))
    return out


def test_in_order_packets_come_straight_out() -> None:
    jb = JitterBuffer(4)

    for seq in range(100, 110):
        assert seqs(jb.add(pkt(seq))) == [seq]

    assert jb.pending == 0
    assert jb.stats == JitterStats(received=10)


def test_reorders_within_capacity() -> None:
    jb = JitterBuffer(4)

    assert seqs(jb.add(pkt(1))) == [1]
    assert seqs(jb.add(pkt(3))) == []
    assert seqs(jb.add(pkt(4))) == []
    assert seqs(jb.add(pkt(2))) == [2, 3, 4]
    assert jb.stats.lost == 0


def test_gives_up_on_a_gap_when_the_buffer_is_full() -> None:
    jb = JitterBuffer(4)
    jb.add(pkt(0))

    held = [seqs(jb.add(pkt(seq))) for seq in (2, 3, 4)]
    released = seqs(jb.add(pkt(5)))

    assert held == [[], [], []]
    assert released == [2, 3, 4, 5]
    assert jb.stats.lost == 1


def test_packet_arriving_after_it_was_given_up_is_late() -> None:
    jb = JitterBuffer(2)
    feed(jb, [0, 2, 3])  # 1 given up

    assert jb.add(pkt(1)) == []
    assert (jb.stats.lost, jb.stats.late, jb.stats.duplicates) == (1, 1, 0)


def test_packet_from_before_the_first_one_is_late() -> None:
    jb = JitterBuffer(4)
    jb.add(pkt(10))

    assert jb.add(pkt(9)) == []
    assert jb.stats.late == 1


def test_duplicates_are_dropped_whether_held_or_already_played() -> None:
    jb = JitterBuffer(4)

    out = feed(jb, [0, 0, 2, 2, 1, 1])

    assert out == [0, 1, 2]
    assert jb.stats.duplicates == 3
    assert jb.stats.late == 0


def test_in_order_across_the_wrap() -> None:
    jb = JitterBuffer(4)

    assert feed(jb, [65534, 65535, 0, 1]) == [65534, 65535, 0, 1]


def test_reorders_across_the_wrap() -> None:
    jb = JitterBuffer(4)

    assert feed(jb, [65533, 65535, 0, 65534, 1]) == [65533, 65534, 65535, 0, 1]
    assert jb.stats.lost == 0


def test_gap_across_the_wrap_counts_the_missing_ones() -> None:
    jb = JitterBuffer(3)

    assert feed(jb, [65534, 0, 1, 2]) == [65534, 0, 1, 2]
    assert jb.stats.lost == 1  # 65535


def test_ssrc_change_releases_the_old_stream_then_starts_the_new_one() -> None:
    jb = JitterBuffer(4)
    feed(jb, [10, 12])  # 12 held behind the gap at 11

    out = jb.add(pkt(500, ssrc=0x9999))

    assert [(p.ssrc, p.sequence_number) for p in out] == [(SSRC, 12), (0x9999, 500)]
    assert jb.stats.resets == 1
    assert jb.stats.lost == 1
    assert seqs(jb.add(pkt(501, ssrc=0x9999))) == [501]


def test_a_huge_sequence_jump_restarts_instead_of_counting_thousands_lost() -> None:
    jb = JitterBuffer(4)
    feed(jb, [1, 2, 3])

    assert feed(jb, [40000, 40001]) == [40000, 40001]
    assert jb.stats.lost == 0
    assert jb.stats.resets == 1


def test_flush_returns_held_packets_in_order_and_counts_gaps() -> None:
    jb = JitterBuffer(8)
    feed(jb, [0, 5, 3])

    assert seqs(jb.flush()) == [3, 5]
    assert jb.stats.lost == 3  # 1, 2, 4
    assert jb.pending == 0
    assert jb.flush() == []
    assert seqs(jb.add(pkt(6))) == [6]


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity must be at least 1, got 0"):
        JitterBuffer(0)


@pytest.mark.parametrize("start", [0, 65000])
def test_shuffled_lossy_stream_comes_out_in_order_with_every_loss_counted(start: int) -> None:
    rng = random.Random(start)
    capacity = 6
    sent = [seq_add(start, i) for i in range(2000)]
    dropped = set(rng.sample(sent[1:-capacity], 100))
    arrival = [s for s in sent if s not in dropped]
    # Local reordering: swap neighbours less than `capacity` apart.
    for i in range(0, len(arrival) - capacity, 7):
        j = i + rng.randrange(1, capacity - 1)
        arrival[i + 1], arrival[j] = arrival[j], arrival[i + 1]
    jb = JitterBuffer(capacity)

    out = feed(jb, arrival) + seqs(jb.flush())

    assert out == [s for s in sent if s not in dropped]
    assert all(seq_diff(b, a) > 0 for a, b in itertools.pairwise(out))
    assert jb.stats.lost == len(dropped)
    assert jb.stats.late == 0
