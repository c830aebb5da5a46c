"""Sample-rate conversion of int16 PCM with soxr (e.g. 22050 Hz TTS -> 8 kHz phone, 8k -> 16k STT).

soxr's streaming mode holds back output until it has a block to filter: fed 20 ms chunks at
the default quality it answers in bursts about 100 ms apart. Feed bigger chunks (a TTS
sentence) or use ``resample()`` when the whole signal is at hand.
"""

from __future__ import annotations

import numpy as np
import soxr

from ari_offload.media.pcm import Pcm, as_pcm

DEFAULT_QUALITY = "HQ"


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
            return np.zeros(0, dtype=np.int16)
        tail = as_pcm(self._stream.resample_chunk(np.zeros(0, dtype=np.int16), last=True))
        self._stream.clear()  # soxr allows last=True once per signal
        return tail


def resample(pcm: Pcm, src_rate: int, dst_rate: int, quality: str = DEFAULT_QUALITY) -> Pcm:
    """Resample a whole signal at once."""
    samples = as_pcm(pcm)
    if src_rate == dst_rate:
        return samples.copy()
    return as_pcm(soxr.resample(samples, src_rate, dst_rate, quality=quality))
