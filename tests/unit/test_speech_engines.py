"""The engine registries: settings pick engines by name; a new engine needs no package edit.

The throwaway engines here are fakes on purpose: the registry and SpeechModels are what is
tested, not whisper or piper (tests/test_speech_models.py loads the real ones).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pytest

from ari_offload.audio import SAMPLE_RATE, Pcm
from ari_offload.config import Settings, SpeechSettings
from ari_offload.errors import ConfigError
from ari_offload.speech.engines import STT_ENGINES, TTS_ENGINES, VAD_ENGINES, Registry
from ari_offload.speech.models import describe_lines, load_speech_models
from ari_offload.speech.piper import parse_voices, plan_voices
from ari_offload.speech.streaming import SegmentedStt, UtteranceStt, utterance_stt
from ari_offload.speech.stt import SttRunner
from ari_offload.speech.vad import FrameClassifier, SpeechStarted, VadParams


class EchoStt:
    """Hears every utterance as its length and language."""

    streaming = True
    languages = ("en", "de")

    def __init__(self) -> None:
        self.warmed = False

    def open_stream(
        self, runner: SttRunner, language: str | None, sample_rate: int
    ) -> UtteranceStt:
        # streaming in name only: enough here
        return SegmentedStt(runner, language, sample_rate=sample_rate)

    def transcribe(
        self, pcm8k: Pcm, language: str | None = None, sample_rate: int = SAMPLE_RATE
    ) -> str:
        rate = "" if sample_rate == SAMPLE_RATE else f" at {sample_rate} Hz"
        return f"{pcm8k.size} samples{rate} in {language}"

    def warmup(self) -> None:
        self.warmed = True

    def describe(self) -> dict[str, Any]:
        return {"engine": "echo", "summary": "hears lengths"}


class SaysItStreams:
    """Claims to stream but cannot open a stream."""

    streaming = True
    languages = ("en",)

    def transcribe(
        self, pcm8k: Pcm, language: str | None = None, sample_rate: int = SAMPLE_RATE
    ) -> str:
        return ""

    def warmup(self) -> None: ...

    def describe(self) -> dict[str, Any]:
        return {"engine": "says-it-streams", "summary": "no stream"}


class BeepVoice:
    def __init__(self, name: str, samples: int) -> None:
        self.name = name
        self.samples = samples
        self.paced: list[float] = []  # the rates asked of at_rate

    def synthesize_sentence(self, text: str, sample_rate: int = SAMPLE_RATE) -> Pcm:
        return np.full(self.samples * sample_rate // SAMPLE_RATE, 1000, dtype=np.int16)

    def warmup(self) -> None: ...

    def at_rate(self, rate: float) -> BeepVoice:
        self.paced.append(rate)
        return BeepVoice(self.name, round(self.samples / rate))

    def describe(self) -> dict[str, Any]:
        return {"engine": "beep", "summary": f"voice {self.name}: {self.samples} samples"}


class LoudVad:
    """Any frame with a sample above 500 is speech."""

    def new_classifier(self) -> FrameClassifier:
        return lambda frame: bool(np.abs(frame).max() > 500)

    def describe(self) -> dict[str, Any]:
        return {"engine": "loud", "summary": "threshold 500"}


def load_echo(settings: SpeechSettings, workers: int) -> EchoStt:
    return EchoStt()


def load_beeps(settings: SpeechSettings) -> Sequence[BeepVoice]:
    return [BeepVoice("short", 800), BeepVoice("long", 1600)]


def load_loud(settings: SpeechSettings, params: VadParams) -> LoudVad:
    return LoudVad()


@pytest.fixture
def throwaway_engines() -> Iterator[SpeechSettings]:
    """Engines registered from outside the package, as a plugin would; removed afterwards."""
    STT_ENGINES.register("echo", load_echo)
    TTS_ENGINES.register("beep", load_beeps)
    VAD_ENGINES.register("loud", load_loud)
    yield SpeechSettings(
        stt_engine="echo", tts_engine="beep", vad_engine="loud", turn_engine="silence"
    )
    STT_ENGINES.unregister("echo")
    TTS_ENGINES.unregister("beep")
    VAD_ENGINES.unregister("loud")


@pytest.mark.parametrize(
    ("field", "setting", "known"),
    [
        ("stt_engine", "ARI_OFFLOAD_SPEECH_STT_ENGINE", "whisper"),
        ("tts_engine", "ARI_OFFLOAD_SPEECH_TTS_ENGINE", "piper"),
        ("vad_engine", "ARI_OFFLOAD_SPEECH_VAD_ENGINE", "silero, webrtcvad"),
    ],
)
def test_an_unknown_engine_is_refused_naming_the_setting_and_the_known_names(
    field: str, setting: str, known: str
) -> None:
    env = {setting: "nope"}
    settings = Settings.from_env(env).speech
    assert getattr(settings, field) == "nope"
    message = f"{setting}='nope': no such {field[:3]} engine; known: {known}"
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        load_speech_models(settings)  # refused before any model loads


def test_the_defaults_are_todays_engines() -> None:
    settings = SpeechSettings()
    assert (settings.stt_engine, settings.tts_engine, settings.vad_engine) == (
        "whisper",
        "piper",
        "silero",
    )
    assert STT_ENGINES.names() == ["whisper"]
    assert TTS_ENGINES.names() == ["piper"]
    assert VAD_ENGINES.names() == ["silero", "webrtcvad"]


def test_a_name_is_registered_once() -> None:
    registry: Registry[int] = Registry("test", "ARI_OFFLOAD_TEST")
    registry.register("one", 1)
    with pytest.raises(ValueError, match="'one' is registered already"):
        registry.register("one", 2)
    assert registry.get("one") == 1


async def test_registered_engines_are_chosen_by_name(throwaway_engines: SpeechSettings) -> None:
    models = load_speech_models(throwaway_engines)
    try:
        assert isinstance(models.transcriber, EchoStt)
        assert models.transcriber.warmed
        assert models.transcriber.streaming
        assert (models.voice_names(), models.default_voice) == (["short", "long"], "short")
        assert models.languages() == ["en", "de"]

        heard = await models.stt.transcribe(np.zeros(160, np.int16), "de")
        assert heard.text == "160 samples in de"
        spoken = [pcm.size async for _sentence, pcm in models.tts_for("long").stream("Hi.")]
        assert spoken == [1600]
        spoken = [pcm.size async for _sentence, pcm in models.tts_for(None).stream("Hi.")]
        assert spoken == [800]

        segmenter = models.new_segmenter()
        loud = np.full(160, 1000, dtype=np.int16)
        events = [e for _ in range(10) for e in segmenter.feed(loud)]
        assert [type(e) for e in events] == [SpeechStarted]

        lines = describe_lines(models.describe())
        assert lines[0].startswith("stt  echo: hears lengths; load ")
        assert lines[1].startswith("tts  beep: 2 voice(s), default short; load ")
        assert lines[2:4] == [
            "tts  beep: voice short: 800 samples",
            "tts  beep: voice long: 1600 samples",
        ]
        assert lines[4].startswith("vad  loud: threshold 500, min speech 120 ms")
        assert lines[5] == "turn silence: the VAD endpoint alone"
        assert models.new_turn_gate() is None
    finally:
        models.close()


async def test_a_wideband_call_hears_transcribes_and_speaks_at_16_khz(
    throwaway_engines: SpeechSettings,
) -> None:
    models = load_speech_models(throwaway_engines)
    try:
        stt = utterance_stt(models.stt, "de", "call-1", sample_rate=16000)
        heard = await stt.utterance_ended(np.zeros(320, np.int16))
        assert heard.text == "320 samples at 16000 Hz in de"  # the engine is told the rate

        wide = models.tts_for("long", None, 16000)
        assert wide.sample_rate == 16000
        assert wide is models.tts_for("long", 1.0, 16000)
        assert wide is not models.tts_for("long")  # the 8 kHz runner stays as it was
        assert [pcm.size async for _s, pcm in wide.stream("Hi.")] == [3200]
        assert [pcm.size async for _s, pcm in models.tts_for("long", 2.0, 16000).stream("Hi.")] == [
            1600
        ]

        segmenter = models.new_segmenter(16000)
        assert segmenter.params.sample_rate == 16000
        quiet, loud = np.zeros(320, np.int16), np.full(320, 1000, dtype=np.int16)
        events = [e for frame in [quiet] * 5 + [loud] * 10 for e in segmenter.feed(frame)]
        assert events == [SpeechStarted(5 * 320)]  # positions in 16 kHz samples
        with pytest.raises(ValueError, match="int16 frame of 320 samples"):
            segmenter.feed(np.zeros(160, np.int16))
    finally:
        models.close()


async def test_an_agent_rate_speaks_its_voice_faster_or_slower_made_once_per_rate(
    throwaway_engines: SpeechSettings, caplog: pytest.LogCaptureFixture
) -> None:
    models = load_speech_models(throwaway_engines)
    long = models.voices["long"]
    assert isinstance(long, BeepVoice)

    async def samples(voice: str | None, rate: float | None) -> list[int]:
        return [pcm.size async for _s, pcm in models.tts_for(voice, rate).stream("Hi.")]

    try:
        assert models.tts_for("long", None) is models.tts_for("long", 1.0) is models.tts_for("long")
        assert await samples("long", 2.0) == [800]  # twice as fast: half as long
        assert await samples("long", 0.5) == [3200]
        assert await samples(None, 2.0) == [400]  # the default voice at that rate
        assert models.tts_for("long", 2.0) is models.tts_for("long", 2.0)  # made once, kept
        assert models.tts_for("long", 2.0) is not models.tts_for("short", 2.0)
        assert long.paced == [2.0, 0.5]  # one view per (voice, rate), not one per reply
        # Outside the API's bounds (a database edited by hand): held to them.
        assert models.tts_for("long", 9.0) is models.tts_for("long", 2.0)
        assert models.tts_for("long", 0.1) is models.tts_for("long", 0.5)
        # A voice lost since the agent was stored: the default voice, at the agent's rate.
        assert await samples("gone", 2.0) == [400]
        assert "no voice 'gone' here; using 'short'" in caplog.text
    finally:
        models.close()


def test_a_streaming_engine_without_open_stream_is_refused_at_load(
    throwaway_engines: SpeechSettings,
) -> None:
    STT_ENGINES.register("half", lambda settings, workers: SaysItStreams())
    try:
        settings = SpeechSettings(stt_engine="half", tts_engine="beep", vad_engine="loud")
        with pytest.raises(ConfigError) as err:
            load_speech_models(settings)
    finally:
        STT_ENGINES.unregister("half")
    assert str(err.value) == (
        "ARI_OFFLOAD_SPEECH_STT_ENGINE='half': the engine says it is streaming but has no"
        " open_stream(runner, language, sample_rate)"
    )


def test_voices_setting_names_voices_and_variants() -> None:
    raw = (
        "slow=joe;length_scale=1.4; volume=0.5 , amy=/voices/amy.onnx,"
        " quick-amy=amy;length_scale=0.8"
    )
    assert plan_voices("joe", raw) == [
        ("slow", "joe", {"length_scale": 1.4, "volume": 0.5}),
        ("amy", "/voices/amy.onnx", {}),
        ("quick-amy", "amy", {"length_scale": 0.8}),
    ]
    assert plan_voices("joe", "") == []


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("slow", "'slow': expected name=path.onnx or name=voice;key=value"),
        ("bad name=joe", "'bad name=joe': expected name=path.onnx"),
        ("slow=joe;pitch=2", "'slow=joe;pitch=2': unknown 'pitch'; known: length_scale, "),
        ("slow=joe;length_scale=x", "'slow=joe;length_scale=x': length_scale must be a number"),
        ("joe=joe;volume=2", "voice 'joe' is named twice"),
        ("fast=slow", "voice 'fast' names 'slow', neither a .onnx path nor a voice named before"
         " it (voices: joe)"),
    ],
)  # fmt: skip
def test_a_bad_voices_setting_names_the_setting_and_the_entry(raw: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"ARI_OFFLOAD_SPEECH_TTS_VOICES: {problem}")):
        plan_voices("joe", raw)


def test_speaker_id_is_read_as_an_integer() -> None:
    ((_name, _source, options),) = parse_voices("two=/v/multi.onnx;speaker_id=2")
    assert options == {"speaker_id": 2}
    assert isinstance(options["speaker_id"], int)
