"""PlayedClock: the outbound sample clock of a transport that learns late what was played."""

from __future__ import annotations

from ari_offload.media.port import PlayedClock


def test_frames_reported_together_or_on_time_follow_on() -> None:
    clock = PlayedClock(8000)
    # three frames in one report (a mark covering them, or a loop that ran late), then one more
    stamps = [clock.stamp(160, 1.0) for _ in range(3)] + [clock.stamp(160, 1.02)]
    assert stamps == [0, 160, 320, 480]


def test_an_idle_stream_counts_its_silence_in_as_rtp_timestamps_do() -> None:
    clock = PlayedClock(16000, gap_s=0.2)
    assert clock.stamp(320, 5.0) == 0
    assert clock.stamp(320, 6.02) == 320 + 16000  # a second with nothing to play


def test_a_short_lull_is_not_a_gap() -> None:
    clock = PlayedClock(8000, gap_s=0.2)
    clock.stamp(160, 0.0)
    assert clock.stamp(160, 0.15) == 160  # a late report, not silence


def test_timestamps_wrap_at_32_bits() -> None:
    clock = PlayedClock(8000, gap_s=0.0)
    clock.stamp(160, 0.0)
    assert clock.stamp(160, 2**32 / 8000) < 2**32
