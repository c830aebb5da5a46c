"""smart-turn on real (espeak-ng) speech over the phone: what the conversation's gate does."""

from __future__ import annotations

import numpy as np
import pytest

from ari_offload.audio import Pcm
from ari_offload.config import (
    DEFAULT_TURN_END_SILENCE_MS,
    DEFAULT_TURN_MAX_SILENCE_MS,
    SpeechSettings,
)
from ari_offload.errors import ModelError
from ari_offload.speech.engines import VAD_ENGINES
from ari_offload.speech.models import SpeechModels, describe_lines, vad_params_from
from ari_offload.speech.turn_end import SmartTurnModel, TurnEndGate
from ari_offload.speech.vad import VadSegmenter
from tests.conftest import Speak
from tests.test_speech_models import telephone

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def model() -> SmartTurnModel:
    loaded = SmartTurnModel()
    loaded.warmup()
    return loaded


def gate_says_finished(model: SmartTurnModel, pcm: Pcm) -> bool:
    """Run the caller's line through the VAD and the gate as a call does; the decision."""
    settings = SpeechSettings(turn_engine="smart-turn")
    params = vad_params_from(settings)
    vad = VAD_ENGINES.get(settings.vad_engine)(settings, params)  # the default engine
    segmenter = VadSegmenter(params, vad.new_classifier())
    gate = TurnEndGate(settings.turn_end_silence_ms, settings.turn_threshold)
    line = np.concatenate([telephone(pcm), np.zeros(8000, np.int16)])
    for frame in line[: line.size - line.size % 160].reshape(-1, 160):
        for event in segmenter.feed(frame):
            gate.vad(event)
        audio = gate.frame(segmenter.silence_ms)
        if audio is not None:
            return gate.finished(gate.pause, model.probability(audio))
    raise AssertionError("the gate never asked")


def test_a_finished_question_ends_the_turn(model: SmartTurnModel, speak: Speak) -> None:
    assert gate_says_finished(model, speak("Can you tell me when the store opens?"))


def test_a_question_cut_before_its_noun_waits(model: SmartTurnModel, speak: Speak) -> None:
    assert not gate_says_finished(model, speak("Can you tell me when the"))


def test_a_missing_model_names_the_ways_out() -> None:
    with pytest.raises(ModelError, match=r"install-turn-model.*TURN_ENGINE=silence"):
        SmartTurnModel(path=SmartTurnModel().path.with_name("nope.onnx"))


def test_doctor_describes_the_model_and_its_silences(
    model: SmartTurnModel, speech_models: SpeechModels
) -> None:
    settings = SpeechSettings(turn_engine="smart-turn")
    with_model = SpeechModels(
        speech_models.transcriber, list(speech_models.voices.values()), speech_models.vad,
        vad_params_from(settings), seconds={**speech_models.seconds, "turn_warmup": 0.01},
        turn_end=model,
    )  # fmt: skip
    try:
        lines = describe_lines(with_model.describe())
    finally:
        with_model.close()
    assert lines[-2].endswith(f"endpoint {DEFAULT_TURN_MAX_SILENCE_MS} ms")
    assert lines[-1].startswith(
        f"turn smart-turn: smart-turn-v3.2-cpu.onnx (8.7 MB, 1 thread), asked after"
        f" {DEFAULT_TURN_END_SILENCE_MS} ms of silence"
    )
