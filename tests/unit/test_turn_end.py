"""The end-of-turn gate (sans-IO) and the segmenter's early end, with scripted frames."""

from __future__ import annotations

import numpy as np
import pytest

from ari_offload.config import SpeechSettings
from ari_offload.errors import ConfigError
from ari_offload.speech.models import vad_params_from
from ari_offload.speech.turn_end import TurnEndGate, transcript_unfinished
from ari_offload.speech.vad import SpeechPaused, UtteranceEnded, VadParams, VadSegmenter

FRAME = 160
LOUD = np.full(FRAME, 2000, dtype=np.int16)
QUIET = np.zeros(FRAME, dtype=np.int16)


def segmenter(endpoint_ms: int = 1200) -> VadSegmenter:
    params = VadParams(endpoint_silence_ms=endpoint_ms, pause_ms=160)
    return VadSegmenter(params, lambda frame: bool(np.abs(frame).max() > 500))


def run(seg: VadSegmenter, gate: TurnEndGate, frames: list[np.ndarray]) -> list[int]:
    """Feed frames; the frame indexes at which the gate asks."""
    asked = []
    for i, frame in enumerate(frames):
        for event in seg.feed(frame):
            gate.vad(event)
        if gate.frame(seg.silence_ms) is not None:
            asked.append(i)
    return asked


def test_the_gate_asks_once_per_pause_after_the_short_silence() -> None:
    seg, gate = segmenter(), TurnEndGate(ask_after_ms=240, threshold=0.5)
    asked = run(seg, gate, [LOUD] * 20 + [QUIET] * 30)
    assert asked == [20 + 240 // 20 - 1]  # the 12th quiet frame, and only that one


def test_a_pause_shorter_than_the_short_silence_asks_nothing() -> None:
    seg, gate = segmenter(), TurnEndGate(ask_after_ms=240, threshold=0.5)
    assert run(seg, gate, ([LOUD] * 20 + [QUIET] * 10) * 3) == []


def test_a_finished_answer_ends_the_utterance_with_the_paused_audio() -> None:
    seg, gate = segmenter(), TurnEndGate(ask_after_ms=240, threshold=0.5)
    paused: list[SpeechPaused] = []
    for frame in [LOUD] * 20 + [QUIET] * 12:
        for event in seg.feed(frame):
            gate.vad(event)
            paused += [event] if isinstance(event, SpeechPaused) else []
        audio = gate.frame(seg.silence_ms)
    assert audio is not None
    assert audio is paused[0].audio_so_far
    assert gate.finished(gate.pause, 0.9, "Thank you, goodbye.")
    ended = seg.end_now()
    assert isinstance(ended, UtteranceEnded)
    assert np.array_equal(ended.audio, paused[0].audio_so_far)  # the speculative STT's audio
    assert not seg.in_speech
    assert seg.end_now() is None


def test_an_answer_after_speech_resumed_is_dropped() -> None:
    seg, gate = segmenter(), TurnEndGate(ask_after_ms=240, threshold=0.5)
    run(seg, gate, [LOUD] * 20 + [QUIET] * 12)
    asked_about = gate.pause
    run(seg, gate, [LOUD] * 3)  # the caller goes on while the model thinks
    assert not gate.finished(asked_about, 0.99)
    assert seg.end_now() is None  # and no utterance ends mid-speech


@pytest.mark.parametrize(
    ("probability", "transcript", "finished"),
    [
        (0.9, None, True),  # no transcript (yet): the model decides
        (0.2, "Thank you, goodbye.", False),  # the model says not yet
        (0.9, "My order number is...", False),  # the words trail off
        (0.9, "I would like to.", False),  # a sentence does not end on "to"
        (0.9, "Yes, that's right.", True),
    ],
)
def test_the_model_and_the_transcript_both_must_say_finished(
    probability: float, transcript: str | None, finished: bool
) -> None:
    seg, gate = segmenter(), TurnEndGate(ask_after_ms=240, threshold=0.5)
    run(seg, gate, [LOUD] * 20 + [QUIET] * 12)
    assert gate.finished(gate.pause, probability, transcript) is finished


def test_without_an_early_end_the_long_silence_ends_the_turn() -> None:
    seg = segmenter(endpoint_ms=1200)
    events = [e for f in [LOUD] * 20 + [QUIET] * 70 for e in seg.feed(f)]
    ended = [i for i, e in enumerate(events) if isinstance(e, UtteranceEnded)]
    assert len(ended) == 1
    assert seg.silence_ms == 0


@pytest.mark.parametrize(
    ("text", "unfinished"),
    [
        ("My order number is", True),
        ("I need to reset my...", True),
        ("Can you tell me when the", True),
        ("Thank you.", False),
        ("What is it for?", False),
        ("", False),
    ],
)
def test_transcripts_that_stop_mid_sentence(text: str, unfinished: bool) -> None:
    assert transcript_unfinished(text) is unfinished


def test_a_model_makes_the_vad_endpoint_the_long_silence() -> None:
    assert vad_params_from(SpeechSettings(turn_engine="smart-turn")).endpoint_silence_ms == 1200
    silence = SpeechSettings(turn_engine="silence", endpoint_silence_ms=400)
    assert vad_params_from(silence).endpoint_silence_ms == 400
    with pytest.raises(ConfigError, match="TURN_END_SILENCE_MS"):
        vad_params_from(
            SpeechSettings(
                turn_engine="smart-turn", turn_end_silence_ms=1500, turn_max_silence_ms=1200
            )
        )
