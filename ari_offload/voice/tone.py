"""A steady tone in 20 ms frames: the beep an answering machine plays before it records.

Sans-IO: frames in, one label per frame out. A frame is tonal when most of its energy sits
in one narrow band (a sine does; a voice spreads over its harmonics and formants) at a beep's
pitch and loudness. The spectrum is taken over the last two frames (40 ms, Hann window), so
the band is about +-50 Hz wide. A beep is a run of tonal frames on one steady frequency
(``ToneTracker``): one vowel can be tonal for a frame or two, never for ``min_ms`` on end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ari_offload.audio import FRAME_SAMPLES, SAMPLE_RATE, Pcm
from ari_offload.speech.vad import frame_level_dbfs

DEFAULT_MIN_BEEP_MS = 120  # answering machines beep for 0.2-1 s
DEFAULT_PURITY = 0.8  # share of a frame's energy within the band around its peak
DEFAULT_MIN_LEVEL_DBFS = -40.0
DEFAULT_MIN_HZ, DEFAULT_MAX_HZ = 300.0, 3000.0  # beeps in use: 400-2100 Hz
DEFAULT_DRIFT_HZ = 30.0  # how far a steady tone's pitch moves from frame to frame
_WINDOW = 2 * FRAME_SAMPLES
_FFT = 1024
_HZ_PER_BIN = SAMPLE_RATE / _FFT
_BAND_BINS = int(50 / _HZ_PER_BIN)  # +-50 Hz: the main lobe of a 40 ms Hann window


@dataclass(frozen=True)
class ToneParams:
    min_beep_ms: int = DEFAULT_MIN_BEEP_MS
    purity: float = DEFAULT_PURITY
    min_level_dbfs: float = DEFAULT_MIN_LEVEL_DBFS
    min_hz: float = DEFAULT_MIN_HZ
    max_hz: float = DEFAULT_MAX_HZ
    drift_hz: float = DEFAULT_DRIFT_HZ


def tone_of(window: Pcm, params: ToneParams) -> float | None:
    """The frequency of the steady tone ``window`` (40 ms) holds, or None."""
    samples = window.astype(np.float64) * np.hanning(len(window))
    power = np.abs(np.fft.rfft(samples, _FFT)) ** 2
    total = float(power.sum())
    if total <= 0.0:
        return None
    peak = int(np.argmax(power))
    band = float(power[max(0, peak - _BAND_BINS) : peak + _BAND_BINS + 1].sum())
    hz = peak * _HZ_PER_BIN
    if band / total < params.purity or not params.min_hz <= hz <= params.max_hz:
        return None
    return hz


@dataclass(frozen=True)
class Beep:
    """A tone that lasted long enough, and has now ended."""

    hz: float
    start_sample: int
    end_sample: int

    @property
    def ms(self) -> int:
        return (self.end_sample - self.start_sample) * 1000 // SAMPLE_RATE


class ToneTracker:
    """Feed 20 ms frames; ``feed`` returns a ``Beep`` on the frame after one ended.

    ``tonal`` says whether the last frame was part of a tone, so a caller can keep a beep
    out of what it counts as speech.
    """

    def __init__(self, params: ToneParams | None = None) -> None:
        self.params = params or ToneParams()
        self._previous: Pcm = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        self._samples = 0
        self._run_start: int | None = None
        self._run_hz = 0.0
        self.tonal = False

    def feed(self, frame: Pcm) -> Beep | None:
        start = self._samples
        self._samples += len(frame)
        window = np.concatenate((self._previous, frame))[-_WINDOW:]
        self._previous = frame
        hz = None
        if frame_level_dbfs(frame) >= self.params.min_level_dbfs:
            hz = tone_of(window, self.params)
        steady = hz is not None and (
            self._run_start is None or abs(hz - self._run_hz) <= self.params.drift_hz
        )
        if steady:
            assert hz is not None
            if self._run_start is None:
                self._run_start, self._run_hz = start, hz
            self.tonal = True
            return None
        beep = self._end_run(start)
        if hz is not None:  # a tone on another pitch: a new run starts here
            self._run_start, self._run_hz = start, hz
        self.tonal = hz is not None
        return beep

    def _end_run(self, end: int) -> Beep | None:
        if self._run_start is None:
            return None
        beep = Beep(self._run_hz, self._run_start, end)
        self._run_start = None
        return beep if beep.ms >= self.params.min_beep_ms else None
