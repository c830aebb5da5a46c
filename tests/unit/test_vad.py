"""VadSegmenter on real speech (espeak-ng) and on scripted frame labels."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from ari_offload.audio import Pcm
from ari_offload.speech.vad import (
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    UtteranceEnded,
    VadEvent,
    VadParams,
    VadSegmenter,
    frame_level_dbfs,
    telephone_band,
)
from ari_offload.speech.webrtc_vad import webrtc_classifier

RATE = 8000
FRAME = 160
Speak = Callable[[str], Pcm]


def silence(ms: int) -> Pcm:
    return np.zeros(RATE * ms // 1000, dtype=np.int16)


def with_noise(pcm: Pcm, rms: float, seed: int = 7) -> Pcm:
    noise = np.random.default_rng(seed).normal(0.0, rms, pcm.size)
    return np.clip(pcm + noise, -32768, 32767).astype(np.int16)


def frames(pcm: Pcm) -> Pcm:
    """Whole 20 ms frames, the tail padded with zeros as a pacer would."""
    return np.concatenate([pcm, np.zeros(-pcm.size % FRAME, dtype=np.int16)]).reshape(-1, FRAME)


def webrtc_segmenter(params: VadParams) -> VadSegmenter:
    """The segmenter as a call gets it with the webrtcvad engine."""
    return VadSegmenter(params, webrtc_classifier(params))


def run(segmenter: VadSegmenter, pcm: Pcm) -> list[VadEvent]:
    events: list[VadEvent] = []
    for frame in frames(pcm):
        events.extend(segmenter.feed(frame))
    return events


def voiced_span(pcm: Pcm, threshold: int = 500) -> tuple[int, int]:
    loud = np.nonzero(np.abs(pcm) > threshold)[0]
    return int(loud[0]), int(loud[-1])


def kinds(events: list[VadEvent]) -> list[str]:
    return [type(e).__name__ for e in events]


def test_one_utterance_with_silence_around(speak: Speak) -> None:
    speech = speak("I need to reset my password")
    pcm = np.concatenate([silence(1000), speech, silence(1500)])
    events = run(webrtc_segmenter(VadParams()), pcm)

    assert kinds(events) == ["SpeechStarted", "SpeechPaused", "UtteranceEnded"]
    started, ended = events[0], events[-1]
    assert isinstance(started, SpeechStarted)
    assert isinstance(ended, UtteranceEnded)
    first, last = voiced_span(pcm)
    # Speech found within 100 ms of its onset; audio covers the whole speech, plus little else.
    assert abs(started.start_sample - first) <= 800
    assert ended.start_sample <= first
    assert ended.end_sample >= last
    assert ended.end_sample - last < RATE * 0.3
    np.testing.assert_array_equal(ended.audio, pcm[ended.start_sample : ended.end_sample])


def test_endpoint_is_reported_endpoint_silence_after_speech(speak: Speak) -> None:
    params = VadParams(endpoint_silence_ms=700)
    pcm = np.concatenate([silence(300), speak("Hello there"), silence(2000)])
    segmenter = webrtc_segmenter(params)
    _, last = voiced_span(pcm)
    for index, frame in enumerate(frames(pcm)):
        if any(isinstance(e, UtteranceEnded) for e in segmenter.feed(frame)):
            fed_ms = (index + 1) * FRAME * 1000 // RATE
            break
    else:
        pytest.fail("no UtteranceEnded")
    silence_seen_ms = fed_ms - last * 1000 // RATE
    assert 700 <= silence_seen_ms <= 700 + 200


def test_white_noise_at_moderate_level(speak: Speak) -> None:
    speech = speak("Can you tell me when the store opens on Saturday")
    pcm = with_noise(np.concatenate([silence(1000), speech, silence(1500)]), rms=300)
    events = run(webrtc_segmenter(VadParams()), pcm)

    ended = [e for e in events if isinstance(e, UtteranceEnded)]
    assert len(ended) == 1
    start, end = 8000, 8000 + speech.size
    assert ended[0].start_sample <= start + 800
    assert ended[0].end_sample >= end - 800


def test_noise_alone_is_not_speech() -> None:
    pcm = with_noise(silence(3000), rms=300)
    assert run(webrtc_segmenter(VadParams()), pcm) == []


def test_two_utterances_separated_by_a_long_gap(speak: Speak) -> None:
    first, second = speak("I need to reset my password"), speak("Thank you very much")
    pcm = np.concatenate([silence(500), first, silence(2000), second, silence(1000)])
    events = run(webrtc_segmenter(VadParams()), pcm)

    ended = [e for e in events if isinstance(e, UtteranceEnded)]
    assert len(ended) == 2
    second_onset = 4000 + first.size + 16000
    assert ended[0].end_sample < second_onset <= ended[1].end_sample
    assert ended[1].start_sample > ended[0].end_sample


def test_short_pause_inside_is_one_utterance(speak: Speak) -> None:
    first, second = speak("My account number"), speak("is four five six seven")
    pcm = np.concatenate([silence(500), first, silence(350), second, silence(1000)])
    events = run(webrtc_segmenter(VadParams()), pcm)

    assert kinds(events) == [
        "SpeechStarted",
        "SpeechPaused",
        "SpeechResumed",
        "SpeechPaused",
        "UtteranceEnded",
    ]
    paused, resumed, ended = events[1], events[2], events[-1]
    assert isinstance(paused, SpeechPaused)
    assert isinstance(resumed, SpeechResumed)
    assert isinstance(ended, UtteranceEnded)
    second_onset = 4000 + first.size + 2800
    assert abs(resumed.at_sample - second_onset) <= 800
    assert ended.end_sample >= second_onset + second.size - 800


def test_paused_audio_is_the_final_audio_when_speech_does_not_resume(speak: Speak) -> None:
    pcm = np.concatenate([silence(500), speak("Reset my password please"), silence(1000)])
    events = run(webrtc_segmenter(VadParams()), pcm)

    paused, ended = events[-2], events[-1]
    assert isinstance(paused, SpeechPaused)
    assert isinstance(ended, UtteranceEnded)
    np.testing.assert_array_equal(paused.audio_so_far, ended.audio)


def test_max_utterance_cuts_endless_speech(speak: Speak) -> None:
    speech = np.concatenate([speak("one two three four five six seven eight")] * 3)
    params = VadParams(max_utterance_ms=2000)
    events = run(webrtc_segmenter(params), speech)

    ended = [e for e in events if isinstance(e, UtteranceEnded)]
    assert len(ended) >= 2
    assert all(e.audio.size <= 2000 * RATE // 1000 for e in ended)


def test_reset_forgets_speech_in_progress(speak: Speak) -> None:
    segmenter = webrtc_segmenter(VadParams())
    run(segmenter, speak("I need to reset"))
    assert segmenter.in_speech
    segmenter.reset()
    assert not segmenter.in_speech
    assert segmenter.samples_fed == 0
    assert run(segmenter, silence(2000)) == []


# -- the state machine alone, with scripted labels -----------------------------------------


def scripted(labels: str, params: VadParams | None = None) -> list[tuple[int, VadEvent]]:
    """Feed one frame per label ('#' voiced, '.' silent); returns (frame index, event)."""
    it = iter(labels)
    # The scripts below count frames for a 200 ms pause and a 500 ms endpoint.
    params = params or VadParams(pause_ms=200, endpoint_silence_ms=500)
    segmenter = VadSegmenter(params, classifier=lambda _frame: next(it) == "#")
    frame = np.zeros(FRAME, dtype=np.int16)
    return [(i, e) for i in range(len(labels)) for e in segmenter.feed(frame)]


def test_min_speech_needs_enough_voiced_frames() -> None:
    # 120 ms = 6 frames of 20 ms; 5 is not enough.
    assert scripted("....#####......") == []
    out = scripted("....######")
    assert out == [(9, SpeechStarted(4 * FRAME))]


def test_one_silent_frame_does_not_break_the_speech_start() -> None:
    out = scripted("...###.###....")
    assert out == [(9, SpeechStarted(3 * FRAME))]


def test_one_voiced_frame_does_not_resume_a_pause() -> None:
    # 10 silent frames = 200 ms = pause; a lone voiced frame, then silence up to 500 ms.
    out = scripted("########" + "." * 12 + "#" + "." * 20)
    assert [type(e) for _, e in out] == [SpeechStarted, SpeechPaused, UtteranceEnded]
    assert out[-1][0] == 8 + 25 - 1  # the blip counted as silence: endpoint at 25 frames


def test_two_voiced_frames_resume() -> None:
    out = scripted("########" + "." * 12 + "##" + "." * 30)
    assert [type(e) for _, e in out] == [
        SpeechStarted,
        SpeechPaused,
        SpeechResumed,
        SpeechPaused,
        UtteranceEnded,
    ]
    assert out[2][1] == SpeechResumed(20 * FRAME)


def test_pre_roll_is_kept_before_the_speech_start() -> None:
    out = scripted("." * 30 + "#" * 10 + "." * 30)
    ended = out[-1][1]
    assert isinstance(ended, UtteranceEnded)
    assert ended.start_sample == (30 - 10) * FRAME  # 200 ms pre-roll
    assert ended.end_sample == (40 + 4) * FRAME  # 80 ms post-roll


def level_frames(levels: str) -> list[Pcm]:
    """One 20 ms frame per label: 'L' loud (-20 dBFS), 'q' quiet (-60 dBFS), '.' zeros."""
    amplitude = {"L": 3277 * 1.414, "q": 33 * 1.414, ".": 0.0}
    t = np.arange(FRAME)
    return [(amplitude[c] * np.sin(2 * np.pi * 440 * t / RATE)).astype(np.int16) for c in levels]


def test_quiet_voiced_frames_after_speech_count_as_silence() -> None:
    # The engine labels the quiet tail voiced (its hangover); the pause starts where the
    # loud frames stop, so the endpoint comes 25 frames after the last loud one.
    labels = "L" * 10 + "q" * 6 + "." * 30
    segmenter = VadSegmenter(
        VadParams(pause_ms=200, endpoint_silence_ms=500), classifier=lambda f: bool(f.any())
    )
    out = [(i, e) for i, f in enumerate(level_frames(labels)) for e in segmenter.feed(f)]
    assert [type(e) for _, e in out] == [SpeechStarted, SpeechPaused, UtteranceEnded]
    paused = out[1][1]
    assert isinstance(paused, SpeechPaused)
    assert paused.at_sample == 10 * FRAME
    assert out[-1][0] == 10 + 25 - 1


def test_a_quiet_line_is_not_cut_into_pieces() -> None:
    # All speech at -60 dBFS, below the absolute gate: the gate follows the line's own level.
    labels = "q" * 40 + "." * 30
    segmenter = VadSegmenter(
        VadParams(pause_ms=200, endpoint_silence_ms=500), classifier=lambda f: bool(f.any())
    )
    out = [e for f in level_frames(labels) for e in segmenter.feed(f)]
    assert [type(e) for e in out] == [SpeechStarted, SpeechPaused, UtteranceEnded]
    assert isinstance(out[-1], UtteranceEnded)
    assert out[-1].end_sample == (40 + 4) * FRAME


def test_real_speech_end_is_the_last_audible_frame(speak: Speak) -> None:
    speech = speak("What are your opening hours?")
    pcm = np.concatenate([silence(500), speech, silence(1500)])
    events = run(webrtc_segmenter(VadParams()), pcm)
    paused = next(e for e in events if isinstance(e, SpeechPaused))
    loud = [i for i, f in enumerate(frames(pcm)) if frame_level_dbfs(f) >= -45.0]
    last_audible_end = (loud[-1] + 1) * FRAME
    # within one frame of the caller's last audible frame (webrtcvad alone flips ~110 ms later)
    assert abs(paused.at_sample - last_audible_end) <= FRAME


def test_feed_rejects_wrong_frames() -> None:
    segmenter = webrtc_segmenter(VadParams())
    with pytest.raises(ValueError, match="expected an int16 frame of 160 samples"):
        segmenter.feed(np.zeros(80, dtype=np.int16))
    with pytest.raises(ValueError, match="expected an int16 frame"):
        segmenter.feed(np.zeros(FRAME, dtype=np.float32))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"aggressiveness": 4}, "aggressiveness must be 0..3"),
        ({"frame_ms": 25}, "frame_ms must be 10, 20 or 30"),
        ({"sample_rate": 11025}, "sample_rate must be"),
        ({"pause_ms": 900}, "pause_ms must be > 0 and <= endpoint_silence_ms"),
    ],
)
def test_params_are_validated(change: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VadParams(**change)


def test_a_wideband_stream_is_labelled_on_its_telephone_band() -> None:
    seen: list[int] = []

    def engine(frame: Pcm) -> bool:  # made for 8 kHz frames
        seen.append(len(frame))
        return bool(np.abs(frame).max() > 500)

    classify = telephone_band(engine, 16000, 8000)
    t = np.arange(320) / 16000
    low = (3000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    high = (3000 * np.sin(2 * np.pi * 6000 * t)).astype(np.int16)  # above the phone band
    assert [classify(low) for _ in range(3)] == [True] * 3
    classify(high)  # its first samples still carry the end of the tone before (the filter)
    assert classify(high) is False  # filtered out, not folded onto the telephone band
    assert set(seen) == {160}
    with pytest.raises(ValueError, match="no VAD for 48000 Hz frames"):
        telephone_band(engine, 48000, 8000)
