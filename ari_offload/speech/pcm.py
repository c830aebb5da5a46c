"""PCM helpers shared by the speech engines: int16 <-> float32 and resampling (soxr)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import soxr

Pcm16 = npt.NDArray[np.int16]
Float32 = npt.NDArray[np.float32]

_SCALE = 32768.0


def check_pcm16(pcm: Pcm16) -> None:
    if pcm.dtype != np.int16 or pcm.ndim != 1:
        raise ValueError(f"expected 1-D int16 PCM, got {pcm.dtype} with shape {pcm.shape}")


def to_float32(pcm: Pcm16) -> Float32:
    return pcm.astype(np.float32) / np.float32(_SCALE)


def to_int16(audio: Float32) -> Pcm16:
    out: Pcm16 = np.clip(np.rint(audio * _SCALE), -32768, 32767).astype(np.int16)
    return out


def resample(audio: Float32, rate_in: int, rate_out: int) -> Float32:
    if rate_in == rate_out or audio.size == 0:
        return audio.astype(np.float32, copy=False)
    out: Float32 = soxr.resample(audio, rate_in, rate_out).astype(np.float32, copy=False)
    return out
