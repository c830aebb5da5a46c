"""The audio type every media module shares: mono signed 16-bit PCM as a numpy array.

Telephone audio is 8 kHz; one RTP frame is 20 ms = 160 samples (and 160 G.711 bytes).
Positions and durations in the media plane are counted in samples, not wall-clock time.
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import numpy.typing as npt

Pcm: TypeAlias = npt.NDArray[np.int16]

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE


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


def silence(samples: int) -> Pcm:
    return np.zeros(samples, dtype=np.int16)
