"""chan_websocket's outbound core: frames go out with marks, at most ``ahead`` in Asterisk;
marks move ``played``; a flush asks for FLUSH_MEDIA before anything else and forgets what
was in flight; XOFF holds the media. And the inbound framer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ari_offload.media.g711 import SLIN16, ULAW, slin_encode
from ari_offload.media.ws_messages import FLUSH_MEDIA
from ari_offload.media.ws_playout import ByteFramer, MarkedPlayout


def marks_in(messages: list[bytes | str]) -> list[str]:
    return [json.loads(m)["correlation_id"] for m in messages if isinstance(m, str) and "MARK" in m]


def frames_in(messages: list[bytes | str]) -> list[bytes]:
    return [m for m in messages if isinstance(m, bytes)]


def test_each_frame_goes_with_its_mark_and_no_more_than_ahead_at_once() -> None:
    out = MarkedPlayout(ULAW, ahead_frames=3)
    assert out.add_payload(bytes(range(160)) * 5) == 800
    sent = out.take()
    assert [type(m) for m in sent] == [bytes, str] * 3  # a frame, its mark, ...
    assert frames_in(sent) == [bytes(range(160))] * 3
    assert marks_in(sent) == ["1", "2", "3"]
    assert out.take() == []  # Asterisk's share is full
    assert (out.in_flight, out.played, out.queued) == (3, 0, 800)


def test_a_mark_back_plays_its_frame_and_frees_a_slot() -> None:
    out = MarkedPlayout(ULAW, ahead_frames=2)
    out.add_payload(b"\x01" * 160 * 4)
    out.take()
    assert out.mark_processed("1")
    assert (out.played, out.in_flight) == (160, 1)
    assert marks_in(out.take()) == ["3"]
    # A later mark covers the ones before it (marks come back in order).
    assert out.mark_processed("3")
    assert (out.played, out.in_flight) == (480, 0)
    assert marks_in(out.take()) == ["4"]
    assert out.mark_processed("4")
    assert out.idle
    assert out.played == 640


def test_the_frames_a_mark_says_were_played_are_taken_once_in_order() -> None:
    out = MarkedPlayout(ULAW, ahead_frames=3)
    out.add_payload(b"\x01" * 160 + b"\x02" * 160 + b"\x03" * 160)
    out.take()
    assert out.take_played() == []
    assert out.mark_processed("2")
    assert out.take_played() == [b"\x01" * 160, b"\x02" * 160]
    assert out.take_played() == []
    out.flush()
    assert not out.mark_processed("3"), "flushed: never played"
    assert out.take_played() == []


def test_a_mark_not_in_flight_is_stale_and_changes_nothing() -> None:
    out = MarkedPlayout(ULAW, ahead_frames=2)
    out.add_payload(b"\x01" * 320)
    out.take()
    for stale in ("9", "0", "x", "", "-1", "1.0"):
        assert not out.mark_processed(stale)
    assert (out.stale_marks, out.played, out.in_flight) == (6, 0, 2)


def test_flush_cuts_at_what_was_played_and_flush_media_goes_before_new_audio() -> None:
    out = MarkedPlayout(ULAW, ahead_frames=3)
    out.add_payload(b"\x01" * 160 * 10)
    out.take()
    out.mark_processed("1")
    epoch = out.epoch
    assert out.flush() == 160  # the caller heard one frame
    assert out.epoch == epoch + 1  # a sender drops what it took before the flush
    assert (out.queued, out.in_flight, out.idle) == (0, 0, True)
    assert not out.mark_processed("2")  # it crossed the FLUSH on the wire: stale
    assert out.played == 160
    assert out.add_payload(b"\x02" * 160) == 320  # the next reply starts at the cut
    sent = out.take()
    assert sent[0] == FLUSH_MEDIA
    assert frames_in(sent) == [b"\x02" * 160]
    assert out.take() == []  # one FLUSH_MEDIA per flush


def test_a_flush_with_nothing_in_asterisk_sends_no_command() -> None:
    out = MarkedPlayout(ULAW, ahead_frames=3)
    out.add_payload(b"\x01" * 160)
    out.take()
    out.mark_processed("1")
    out.flush()
    assert out.take() == []


def test_xoff_holds_the_media_until_xon() -> None:
    out = MarkedPlayout(ULAW, ahead_frames=5)
    out.add_payload(b"\x01" * 160 * 3)
    out.xoff()
    assert out.take() == []
    out.xon()
    assert len(frames_in(out.take())) == 3


def test_a_partial_tail_waits_for_more_audio_while_enough_is_ahead_of_it() -> None:
    out = MarkedPlayout(ULAW, ahead_frames=10)
    first = np.full(160 * 5 + 100, 1000, np.int16)
    out.add_pcm(first)
    assert len(frames_in(out.take())) == 5  # the 100-sample tail is held back
    out.add_pcm(np.full(60, 1000, np.int16))  # the next sentence completes it
    assert len(frames_in(out.take())) == 1
    out.add_pcm(np.full(50, 1000, np.int16))
    assert frames_in(out.take()) == []  # 6 frames still to play before it
    for mark in ("1", "2", "3"):
        out.mark_processed(mark)
    (tail,) = frames_in(out.take())  # 3 left: now it goes, padded
    assert tail == ULAW.encode(np.full(50, 1000, np.int16)) + bytes([ULAW.silence]) * 110
    for mark in ("4", "5", "6", "7"):
        out.mark_processed(mark)
    assert out.played == 160 * 6 + 50
    assert out.idle


def test_slin16_frames_are_640_bytes_and_positions_count_16_khz_samples() -> None:
    out = MarkedPlayout(SLIN16, ahead_frames=4)
    pcm = (np.arange(640) * 37 % 4000 - 2000).astype(np.int16)
    assert out.add_pcm(pcm) == 640
    sent = frames_in(out.take())
    assert [len(f) for f in sent] == [640, 640]
    assert b"".join(sent) == slin_encode(pcm)
    assert out.add_payload(slin_encode(pcm[:100]) + b"\x07") == 740  # a stray byte is dropped
    out.mark_processed("2")
    assert out.played == 640


def test_ahead_must_be_a_frame_at_least() -> None:
    with pytest.raises(ValueError, match="ahead_frames must be at least 1"):
        MarkedPlayout(ULAW, ahead_frames=0)


def test_the_framer_cuts_any_sizes_into_whole_frames() -> None:
    framer = ByteFramer(4)
    assert framer.feed(b"abcdefghij") == [b"abcd", b"efgh"]
    assert framer.pending == 2
    assert framer.feed(b"k") == []
    assert framer.feed(b"lmnopqrs") == [b"ijkl", b"mnop"]
    assert framer.feed(b"") == []
    assert framer.pending == 3
