"""The one audio type: mono signed 16-bit PCM as a numpy array, its rates and conversions.

Telephone audio is 8 kHz (``SAMPLE_RATE``); one RTP frame is 20 ms = 160 samples (and 160
G.711 bytes). A wideband line (chan_websocket's slin16) is 16 kHz (``WIDEBAND_RATE``): a
media port says its rate (``port.codec.sample_rate``) and its frames carry it, and what reads
them works at that rate. Positions and durations in the media plane are counted in samples
(at the port's rate), not wall-clock time. Engines that want another rate or float audio
(whisper: 16 kHz float32, piper: 22.05 kHz float32) convert at their edge with the helpers
here (soxr).

soxr's streaming mode holds back output until it has a block to filter: fed 20 ms chunks at
the default quality it answers in bursts about 100 ms apart. Feed bigger chunks (a TTS
sentence) to ``Resampler`` or use ``resample()`` when the whole signal is at hand.
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import soxr

Pcm: TypeAlias = npt.NDArray[np.int16]
Float32: TypeAlias = npt.NDArray[np.float32]  # model input/output in [-1, 1]

SAMPLE_RATE = 8000
WIDEBAND_RATE = 16000
FRAME_MS = 20
FRAME_SAMPLES = 160
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE

DEFAULT_QUALITY = "HQ"
_SCALE = 32768.0


def as_pcm(samples: npt.ArrayLike) -> Pcm:
    """Return ``samples`` as a 1-D int16 array, without copying when it already is one.

    Only int16 is accepted: silently casting float audio in [-1, 1] would give silence.
    """
    array = np.asarray(samples)
    if array.dtype != np.int16:
        raise ValueError(f"PCM must be int16, got {array.dtype}")
    if array.ndim != 1:
        raise ValueError(f"PCM must be 1-D (mono), got shape {array.shape}")
    return array


def frame_samples(rate: int) -> int:
    """Samples in one 20 ms frame at ``rate``."""
    return rate * FRAME_MS // 1000


def silence(samples: int) -> Pcm:
    return np.zeros(samples, dtype=np.int16)


def ms_to_samples(ms: float, rate: int = SAMPLE_RATE) -> int:
    return int(ms * rate // 1000)


def samples_to_ms(samples: int, rate: int = SAMPLE_RATE) -> float:
    return samples * 1000 / rate


def to_float32(pcm: Pcm) -> Float32:
    return as_pcm(pcm).astype(np.float32) / np.float32(_SCALE)


def to_int16(audio: Float32) -> Pcm:
    out: Pcm = np.clip(np.rint(audio * _SCALE), -32768, 32767).astype(np.int16)
    return out


def resample_float(audio: Float32, rate_in: int, rate_out: int) -> Float32:
    """Resample float audio whole (engine edges: 8 kHz -> whisper's 16 kHz, piper's -> 8 kHz)."""
    if rate_in == rate_out or audio.size == 0:
        return audio.astype(np.float32, copy=False)
    out: Float32 = soxr.resample(audio, rate_in, rate_out).astype(np.float32, copy=False)
    return out


def resample(pcm: Pcm, src_rate: int, dst_rate: int, quality: str = DEFAULT_QUALITY) -> Pcm:
    """Resample a whole int16 signal at once."""
    samples = as_pcm(pcm)
    if src_rate == dst_rate:
        return samples.copy()
    return as_pcm(soxr.resample(samples, src_rate, dst_rate, quality=quality))


class Resampler:
    """Streaming resampler: ``process()`` chunks of one continuous signal, then ``flush()``."""

    def __init__(self, src_rate: int, dst_rate: int, quality: str = DEFAULT_QUALITY) -> None:
        if src_rate <= 0 or dst_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {src_rate} -> {dst_rate}")
        self.src_rate = src_rate
        self.dst_rate = dst_rate
        self._stream = soxr.ResampleStream(src_rate, dst_rate, 1, dtype="int16", quality=quality)

    def process(self, pcm: Pcm) -> Pcm:
        """Resample the next chunk; the output may be empty while soxr fills its block."""
        samples = as_pcm(pcm)
        if self.src_rate == self.dst_rate:
            return samples.copy()
        return as_pcm(self._stream.resample_chunk(samples))

    def flush(self) -> Pcm:
        """Return the held-back tail and get ready for a new, unrelated signal."""
        if self.src_rate == self.dst_rate:
            return silence(0)
        tail = as_pcm(self._stream.resample_chunk(silence(0), last=True))
        self._stream.clear()  # soxr allows last=True once per signal
        return tail


# Half-band low-pass for Halver: 31 taps, Hamming window, cut at 3.6 kHz of 16 kHz (the
# telephone band passes, what would fold back onto it is stopped).
_HALF_TAPS = 31
_HALF_CUT = 3600 / 16000
_HALF_FIR = np.sinc(2 * _HALF_CUT * (np.arange(_HALF_TAPS) - _HALF_TAPS // 2)) * np.hamming(
    _HALF_TAPS
)
_HALF_FIR /= _HALF_FIR.sum()


class Halver:
    """Streaming decimation by two for frame-by-frame consumers: every even-length chunk in
    gives exactly half as many samples out, at once (``Resampler`` answers in bursts).

    A wideband stream's telephone band, for engines that take 8 kHz frames (the VAD).
    """

    def __init__(self) -> None:
        self._history = np.zeros(_HALF_TAPS - 1, dtype=np.float64)

    def process(self, pcm: Pcm) -> Pcm:
        samples = as_pcm(pcm)
        if len(samples) % 2:
            raise ValueError(f"Halver takes even-length chunks, got {len(samples)} samples")
        signal = np.concatenate((self._history, samples.astype(np.float64)))
        self._history = signal[len(signal) - (_HALF_TAPS - 1) :]
        filtered = np.convolve(signal, _HALF_FIR, mode="valid")[::2]
        return np.clip(np.rint(filtered), -32768, 32767).astype(np.int16)
