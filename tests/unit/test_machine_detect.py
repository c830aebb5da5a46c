"""Answering-machine detection on synthetic audio: the beep finder, the verdicts, the cue.

"Speech" here is a voice-like sound (a gliding 100-140 Hz pitch with 12 harmonics, syllables
at 4 Hz) labelled voiced by its level: the rules are under test, not a VAD engine.
"""

from __future__ import annotations

import numpy as np
import pytest

from ari_offload.audio import FRAME_SAMPLES, SAMPLE_RATE, Pcm
from ari_offload.speech.vad import frame_level_dbfs
from ari_offload.voice.machine_detect import (
    AmdEvent,
    AmdParams,
    AnsweredBy,
    MachineDetector,
    MessageCue,
    Verdict,
)
from ari_offload.voice.tone import ToneTracker, tone_of

RATE = SAMPLE_RATE


def voice(seconds: float, seed: int = 0) -> Pcm:
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 120 + 20 * np.sin(2 * np.pi * 0.7 * t + seed)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    sound = sum(np.sin(k * phase) / k for k in range(1, 13))
    syllables = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t + seed)
    out: Pcm = (sound * syllables * 6000).astype(np.int16)
    return out


def tone(hz: float, seconds: float, level: float = 0.3) -> Pcm:
    t = np.arange(int(seconds * RATE)) / RATE
    out: Pcm = (np.sin(2 * np.pi * hz * t) * level * 32767).astype(np.int16)
    return out


def quiet(seconds: float) -> Pcm:
    return np.zeros(int(seconds * RATE), dtype=np.int16)


def loud(frame: Pcm) -> bool:
    return frame_level_dbfs(frame) > -50


def feed(detector: MachineDetector, *parts: Pcm) -> list[AmdEvent]:
    pcm = np.concatenate(parts)
    pcm = np.concatenate([pcm, np.zeros(-pcm.size % FRAME_SAMPLES, np.int16)])
    events: list[AmdEvent] = []
    for frame in pcm.reshape(-1, FRAME_SAMPLES):
        events.extend(detector.feed(frame))
    return events


def only_verdict(events: list[AmdEvent]) -> Verdict:
    verdicts = [e for e in events if isinstance(e, Verdict)]
    assert len(verdicts) == 1, events
    return verdicts[0]


def only_cue(events: list[AmdEvent]) -> MessageCue:
    cues = [e for e in events if isinstance(e, MessageCue)]
    assert len(cues) == 1, events
    return cues[0]


# --- the beep finder ------------------------------------------------------------------------


@pytest.mark.parametrize("hz", [440.0, 850.0, 1000.0, 1400.0, 2100.0])
def test_a_steady_tone_is_found_at_its_pitch(hz: float) -> None:
    window = tone(hz, 0.04)
    found = tone_of(window, ToneTracker().params)
    assert found is not None
    assert abs(found - hz) < 10


def test_a_voice_noise_and_silence_hold_no_tone() -> None:
    params = ToneTracker().params
    speech = voice(2.0)
    windows = [speech[i : i + 320] for i in range(0, len(speech) - 320, 160)]
    assert sum(tone_of(w, params) is not None for w in windows) <= 2  # a frame, never a run
    noise = np.random.default_rng(1).normal(0, 3000, 320).astype(np.int16)
    assert tone_of(noise, params) is None
    assert tone_of(quiet(0.04), params) is None


def test_a_beep_is_reported_once_it_ends_with_its_span() -> None:
    tracker = ToneTracker()
    pcm = np.concatenate([voice(1.0), quiet(0.3), tone(1000, 0.5), quiet(1.0)])
    beeps = [
        (i, beep)
        for i, frame in enumerate(pcm.reshape(-1, FRAME_SAMPLES))
        if (beep := tracker.feed(frame)) is not None
    ]
    assert len(beeps) == 1
    frame_index, beep = beeps[0]
    assert abs(beep.hz - 1000) < 10
    assert abs(beep.start_sample / RATE - 1.3) <= 0.04
    assert abs(beep.end_sample / RATE - 1.8) <= 0.04
    assert frame_index * FRAME_SAMPLES == beep.end_sample  # told on the first frame after it


def test_a_blip_shorter_than_a_beep_is_no_beep() -> None:
    tracker = ToneTracker()
    pcm = np.concatenate([quiet(0.2), tone(1000, 0.06), quiet(0.5)])
    assert all(tracker.feed(f) is None for f in pcm.reshape(-1, FRAME_SAMPLES))


def test_a_quiet_tone_is_no_beep() -> None:
    tracker = ToneTracker()
    pcm = np.concatenate([tone(1000, 0.5, level=0.002), quiet(0.2)])  # about -54 dBFS
    assert all(tracker.feed(f) is None for f in pcm.reshape(-1, FRAME_SAMPLES))


# --- verdicts -------------------------------------------------------------------------------


def test_hello_then_silence_is_a_person_once_the_silence_is_long_enough() -> None:
    detector = MachineDetector(loud)
    events = feed(detector, quiet(0.4), voice(0.5), quiet(3.0))
    verdict = only_verdict(events)
    assert verdict.answered_by == AnsweredBy.HUMAN
    assert abs(verdict.greeting_ms - 500) <= 40
    expected = 400 + 500 + detector.params.after_greeting_silence_ms
    assert abs(verdict.at_ms - expected) <= 40
    assert not any(isinstance(e, MessageCue) for e in events)  # nothing to leave for a person


def test_a_long_greeting_is_a_machine_as_soon_as_it_passes_the_limit() -> None:
    detector = MachineDetector(loud)
    sentences = [voice(1.6, seed=1), quiet(0.4), voice(1.8, seed=2), quiet(0.5), voice(1.5)]
    verdict = only_verdict(feed(detector, quiet(0.3), *sentences))
    assert verdict.answered_by == AnsweredBy.MACHINE
    limit = detector.params.max_greeting_ms
    assert abs(verdict.at_ms - (300 + limit)) <= 60  # decided at the limit, not at its end
    assert "longer than 3 s" in verdict.cause


def test_a_machine_gets_the_cue_when_its_beep_ends() -> None:
    detector = MachineDetector(loud)
    events = feed(detector, quiet(0.3), voice(5.0), quiet(0.3), tone(1000, 0.5), quiet(5.0))
    assert only_verdict(events).answered_by == AnsweredBy.MACHINE
    cue = only_cue(events)
    assert cue.cause == "beep"
    beep_end_ms = 300 + 5000 + 300 + 500
    assert beep_end_ms <= cue.at_ms <= beep_end_ms + 60  # right after the beep, not before
    assert cue.beep is not None
    assert abs(cue.beep.hz - 1000) < 10


def test_a_machine_without_a_beep_gets_the_cue_after_its_silence() -> None:
    detector = MachineDetector(loud)
    events = feed(detector, quiet(0.3), voice(4.5), quiet(6.0))
    cue = only_cue(events)
    assert cue.cause == "silence"
    expected = 300 + 4500 + detector.params.message_silence_ms
    assert abs(cue.at_ms - expected) <= 60


def test_a_short_greeting_then_a_beep_is_a_machine_at_the_beep() -> None:
    # "Please leave a message." then the beep: too short for the length rule.
    detector = MachineDetector(loud)
    events = feed(detector, quiet(0.3), voice(1.5), quiet(0.3), tone(850, 0.4), quiet(2.0))
    verdict, cue = only_verdict(events), only_cue(events)
    assert verdict.answered_by == AnsweredBy.MACHINE
    assert "beep" in verdict.cause
    assert cue.cause == "beep"
    assert cue.at_ms == verdict.at_ms  # the message goes at once: the machine already records


def test_nobody_speaking_is_a_person_listening() -> None:
    detector = MachineDetector(loud)
    verdict = only_verdict(feed(detector, quiet(6.0)))
    assert verdict.answered_by == AnsweredBy.HUMAN
    assert verdict.at_ms == detector.params.initial_silence_ms
    assert verdict.greeting_ms == 0


def test_clicks_shorter_than_a_word_start_no_greeting() -> None:
    detector = MachineDetector(loud)
    click = voice(0.06)
    events = feed(detector, *[np.concatenate([click, quiet(0.5)]) for _ in range(8)])
    verdict = only_verdict(events)
    assert verdict.cause == "silence, no greeting"


def test_a_machine_that_never_goes_quiet_gets_the_message_at_the_longest_wait() -> None:
    params = AmdParams(max_wait_ms=8000)
    detector = MachineDetector(loud, params)
    cue = only_cue(feed(detector, voice(12.0)))
    assert cue.cause == "timeout"
    assert cue.at_ms == 8000


def test_nothing_is_said_after_a_person_verdict() -> None:
    detector = MachineDetector(loud)
    feed(detector, voice(0.5), quiet(1.5))
    assert detector.verdict is not None
    assert feed(detector, voice(5.0), tone(1000, 0.5), quiet(3.0)) == []


def test_a_long_beep_is_neither_greeting_speech_nor_a_persons_silence() -> None:
    # The classifier calls everything audible speech (webrtcvad often labels a tone voiced);
    # a beep longer than the silence that makes a person must still end as a beep.
    detector = MachineDetector(loud)
    events = feed(detector, quiet(0.3), voice(0.5), quiet(0.2), tone(1000, 2.0), quiet(1.0))
    verdict = only_verdict(events)
    assert verdict.answered_by == AnsweredBy.MACHINE
    assert verdict.greeting_ms <= 520
    assert only_cue(events).cause == "beep"


def test_params_that_cannot_work_are_refused() -> None:
    with pytest.raises(ValueError, match="max_wait_ms"):
        AmdParams(max_greeting_ms=5000, max_wait_ms=4000)
    with pytest.raises(ValueError, match="after_greeting_silence_ms"):
        AmdParams(after_greeting_silence_ms=0)
