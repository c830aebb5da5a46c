"""The sans-IO playout core: positions, frames, marks and flush, with no loop or socket."""

from __future__ import annotations

import numpy as np

from ari_offload.media.g711 import ULAW, ulaw_encode
from ari_offload.media.playout import OutFrame, Playout


def send_all(playout: Playout) -> list[OutFrame]:
    """What an RTP sender does: take each frame and count it played once it is sent."""
    sent = []
    while (frame := playout.take_frame()) is not None:
        playout.report_played(frame.samples)
        sent.append(frame)
    return sent


def test_positions_count_real_samples_and_the_tail_is_padded() -> None:
    playout = Playout(ULAW)
    pcm = (np.arange(1000) * 7 % 2000 - 1000).astype(np.int16)
    assert playout.add_pcm(pcm) == 1000
    assert (playout.queued, playout.played, playout.idle) == (1000, 0, False)
    sent = send_all(playout)
    assert [f.samples for f in sent] == [160] * 6 + [40]
    assert all(len(f.payload) == 160 for f in sent)
    assert b"".join(f.payload for f in sent)[:1000] == ulaw_encode(pcm)
    assert sent[-1].payload[40:] == bytes([ULAW.silence]) * 120
    assert (playout.played, playout.queued, playout.idle) == (1000, 0, True)


def test_a_partial_frame_is_completed_by_pcm_added_before_it_is_taken() -> None:
    playout = Playout(ULAW)
    playout.add_pcm(np.zeros(100, np.int16))
    assert playout.has_frame  # due now, it would go out padded
    playout.add_pcm(np.zeros(60, np.int16))
    assert [f.samples for f in send_all(playout)] == [160]


def test_payload_after_pcm_keeps_the_order_and_positions_run_on() -> None:
    playout = Playout(ULAW)
    positions = [playout.add_pcm(np.zeros(100, np.int16)), playout.add_payload(b"\x42" * 160)]
    assert positions == [100, 260]
    sent = send_all(playout)
    assert [f.samples for f in sent] == [100, 160]
    assert sent[1].payload == b"\x42" * 160


def test_marks_are_reported_once_their_chunk_is_played_in_full() -> None:
    playout = Playout(ULAW)
    first = playout.add_payload(b"\x01" * 320)  # two frames
    second = playout.add_payload(b"\x02" * 160)
    frames = [playout.take_frame() for _ in range(3)]
    assert all(frames)
    assert playout.report_played(160) == []  # half of the first chunk
    assert playout.report_played(160) == [first]
    assert playout.report_played(160) == [second]
    assert playout.idle


def test_played_lags_until_the_transport_reports_it() -> None:
    # A transport with its own buffer (chan_websocket) takes frames ahead of playing them.
    playout = Playout(ULAW)
    end = playout.add_payload(b"\x01" * 480)
    while playout.take_frame() is not None:
        pass
    assert (playout.played, playout.queued, playout.has_frame) == (0, 480, False)
    assert playout.report_played(480) == [end]
    assert playout.played == end


def test_flush_returns_the_cut_position_and_drops_the_rest() -> None:
    playout = Playout(ULAW)
    playout.add_payload(b"\x55" * 160 * 10)
    for _ in range(3):
        frame = playout.take_frame()
        assert frame is not None
        playout.report_played(frame.samples)
    assert playout.flush() == 480
    assert (playout.queued, playout.idle, playout.has_frame) == (0, True, False)
    assert playout.take_frame() is None
    # the stream goes on from where it was cut
    assert playout.add_pcm(np.zeros(320, np.int16)) == 480 + 320


def test_flush_forgets_frames_in_flight_and_their_marks() -> None:
    playout = Playout(ULAW)
    playout.add_payload(b"\x55" * 320)
    playout.take_frame()
    playout.take_frame()
    assert playout.report_played(160) == []
    assert playout.flush() == 160
    assert playout.report_played(160) == []  # a late report of a flushed frame
    assert playout.played == 160


def test_empty_audio_adds_no_chunk() -> None:
    playout = Playout(ULAW)
    assert playout.add_pcm(np.zeros(0, np.int16)) == 0
    assert playout.add_payload(b"") == 0
    assert playout.idle
    assert playout.take_frame() is None
