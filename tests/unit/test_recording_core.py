"""The recording's sans-IO cores: the WAV header (read back by the standard library's reader)
and the stereo timeline that lines the caller and the agent up by their sample clocks."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from ari_offload.audio import FRAME_SAMPLES, Pcm
from ari_offload.observe.stereo import AGENT, CALLER, StereoTimeline
from ari_offload.observe.wav import (
    HEADER_BYTES,
    WavFormat,
    audio_bytes,
    parse_header,
    repaired_header,
    wav_header,
)

STEREO = WavFormat(2, 8000)
RATE = 8000


def frames(n: int, start: int = 1) -> list[Pcm]:
    """``n`` distinct 20 ms frames: frame i holds the value start + i throughout."""
    return [np.full(FRAME_SAMPLES, start + i, dtype=np.int16) for i in range(n)]


def channels(pcm: bytes) -> tuple[Pcm, Pcm]:
    both = np.frombuffer(pcm, dtype="<i2").reshape(-1, 2)
    return both[:, 0], both[:, 1]


# --- WAV --------------------------------------------------------------------------------------


def test_the_header_is_what_the_standard_reader_expects() -> None:
    audio = np.arange(-800, 800, dtype="<i2").tobytes()  # 800 stereo frames
    data = wav_header(STEREO, len(audio)) + audio
    assert len(data) - len(audio) == HEADER_BYTES
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (2, 8000, 2)
        assert wav.getnframes() == 800
        assert wav.readframes(800) == audio
    assert parse_header(data) == (STEREO, len(audio))


def test_a_stale_header_is_repaired_from_the_file_size_dropping_a_torn_frame() -> None:
    # What a SIGKILL leaves: the header counts 1 s, the file holds 3 s and half a frame more.
    stale = wav_header(STEREO, 32_000)
    header, data = repaired_header(stale, HEADER_BYTES + 96_000 + 3)
    assert data == 96_000
    assert parse_header(header) == (STEREO, 96_000)
    assert audio_bytes(STEREO, HEADER_BYTES - 1) == 0  # a file torn inside its header


def test_the_stale_file_itself_still_plays_what_its_header_counts() -> None:
    audio = np.ones(8000 * 2, dtype="<i2").tobytes()
    data = wav_header(STEREO, len(audio) // 2) + audio  # header one update behind
    with wave.open(io.BytesIO(data)) as wav:
        assert wav.getnframes() == 4000
        assert len(wav.readframes(wav.getnframes())) == len(audio) // 2


def patched(offset: int, value: int) -> bytes:
    """A header of ours with the 16-bit field at ``offset`` changed."""
    header = wav_header(STEREO, 0)
    return header[:offset] + value.to_bytes(2, "little") + header[offset + 2 :]


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        (b"RIFF", "too short"),
        (b"RIFX" + wav_header(STEREO, 0)[4:], "canonical"),
        (patched(32, 3), "inconsistent"),  # block align
        (patched(20, 3), "16-bit PCM"),  # float samples
        (patched(34, 8), "16-bit"),  # 8 bits per sample
    ],
)
def test_only_headers_it_wrote_are_read_back(header: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        repaired_header(header, 1000)


def test_sizes_past_what_a_wav_can_hold_are_refused() -> None:
    with pytest.raises(ValueError, match="holds 0 to"):
        wav_header(STEREO, 2**32)


# --- stereo timeline --------------------------------------------------------------------------


def test_contiguous_frames_are_sample_exact_however_late_they_were_read() -> None:
    timeline = StereoTimeline(RATE)
    sent = frames(50)
    rng = np.random.default_rng(1)
    for i, pcm in enumerate(sent):
        # after the first, arrival jitter of up to 0.3 s (a stall, a burst): timestamps decide
        jitter = rng.uniform(0, 0.3) if i else 0.0
        timeline.add(CALLER, pcm, 1000 + i * FRAME_SAMPLES, i * 0.02 + jitter)
    left, right = channels(timeline.finish())
    assert np.array_equal(left, np.concatenate(sent))
    assert not right.any(), "a side with no frames is silence"


def test_a_gap_in_the_timestamps_is_silence_of_that_length() -> None:
    timeline = StereoTimeline(RATE)
    one, two, three = frames(3)
    timeline.add(CALLER, one, 0, 0.0)
    timeline.add(CALLER, two, 160, 0.02)
    timeline.add(CALLER, three, 160 * 4, 0.08)  # two packets lost
    left, _ = channels(timeline.finish())
    assert len(left) == 5 * FRAME_SAMPLES
    assert np.array_equal(left[320:640], np.zeros(320))
    assert np.array_equal(left[640:], three)


def test_the_sides_line_up_by_when_each_began_then_by_their_own_clocks() -> None:
    timeline = StereoTimeline(RATE)
    for i, pcm in enumerate(frames(100)):  # the caller, 2 s from the start
        timeline.add(CALLER, pcm, 7_000_000 + i * 160, i * 0.02)
    reply = frames(25, start=500)
    for i, pcm in enumerate(reply):  # the agent's reply starts 1.5 s in; other clock origin
        timeline.add(AGENT, pcm, 4_000_000_000 + i * 160, 1.5 + i * 0.02)
    left, right = channels(timeline.finish())
    start = int(1.5 * RATE)
    assert not right[:start].any()
    assert np.array_equal(right[start : start + 25 * 160], np.concatenate(reply))
    assert len(left) == len(right) == 2 * RATE


def test_a_talkspurt_after_silence_lands_where_its_timestamp_says() -> None:
    # RTP out: the timestamp moves on over the idle gap (the port's sample clock).
    timeline = StereoTimeline(RATE)
    first, second = frames(2)
    timeline.add(AGENT, first, 0, 0.0)
    timeline.add(AGENT, second, 160 + 8000, 1.1)  # 1 s idle; read 80 ms late
    _, right = channels(timeline.finish())
    assert np.array_equal(right[160 + 8000 :], second)


def test_a_timestamp_that_skipped_no_gap_is_re_placed_by_the_wall_clock() -> None:
    # A transport numbering frames without gaps: 2 s of silence would otherwise vanish.
    timeline = StereoTimeline(RATE, max_skew_s=0.5)
    first, second = frames(2)
    timeline.add(CALLER, first, 0, 0.0)
    timeline.add(CALLER, second, 160, 2.02)
    left, _ = channels(timeline.finish())
    assert np.array_equal(left[int(2.02 * RATE) :], second)
    assert timeline.replaced == 1


def test_a_restarted_stream_is_placed_by_the_wall_clock_never_over_earlier_audio() -> None:
    timeline = StereoTimeline(RATE)
    a, b, c = frames(3)
    timeline.add(CALLER, a, 50_000, 0.0)
    timeline.add(CALLER, b, 12, 0.01)  # timestamps went back: a new stream
    timeline.add(CALLER, c, 172, 1.0)  # follows b by timestamp, but 1 s later by the clock
    left, _ = channels(timeline.finish())
    assert np.array_equal(left[:160], a)
    assert np.array_equal(left[160:320], b), "after the earlier audio, not over it"
    assert np.array_equal(left[8000:8160], c)
    assert timeline.replaced == 2


def test_timestamps_wrap_around_32_bits() -> None:
    timeline = StereoTimeline(RATE)
    a, b = frames(2)
    timeline.add(CALLER, a, 2**32 - 80, 0.0)
    timeline.add(CALLER, b, 80, 0.02)
    left, _ = channels(timeline.finish())
    assert np.array_equal(left, np.concatenate([a, b]))


def test_take_holds_back_the_last_second_and_a_late_frame_goes_after_what_was_released() -> None:
    timeline = StereoTimeline(RATE, hold_s=1.0)
    for i, pcm in enumerate(frames(150)):
        timeline.add(CALLER, pcm, i * 160, i * 0.02)
    out = timeline.take(3.0)  # 3 s in: 2 s settled
    assert len(out) == 2 * RATE * 4
    late = frames(1, start=900)[0]
    timeline.add(AGENT, late, 0, 0.5)  # it belonged 0.5 s in: that was released already
    left, right = channels(out + timeline.finish())
    assert np.array_equal(right[2 * RATE : 2 * RATE + 160], late)
    assert np.array_equal(left, np.concatenate(frames(150)))


def test_the_recording_lasts_to_its_end_even_when_both_sides_were_quiet() -> None:
    timeline = StereoTimeline(RATE)
    timeline.add(CALLER, frames(1)[0], 0, 0.0)
    left, right = channels(timeline.finish(now=2.5))
    assert len(left) == len(right) == int(2.5 * RATE)
    assert not left[160:].any()


def test_released_audio_never_comes_back_and_nothing_is_lost_across_takes() -> None:
    timeline = StereoTimeline(RATE, hold_s=0.1)
    sent = frames(100)
    out = b""
    for i, pcm in enumerate(sent):
        timeline.add(CALLER, pcm, i * 160, i * 0.02)
        if i % 7 == 0:
            out += timeline.take(i * 0.02)
    out += timeline.finish()
    left, _ = channels(out)
    assert np.array_equal(left, np.concatenate(sent))
    assert timeline.released == 100 * 160
