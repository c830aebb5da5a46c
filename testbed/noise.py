"""Line noise for tests and benches: white, pink and brown, deterministic by seed.

A noisy line is the caller's speech with noise under it the whole call long, mixed at a
signal-to-noise ratio: the speech's level is its active level (the RMS of its 20 ms frames
at or above -45 dBFS, the test bed's speech gate), so pauses between words do not lower it.
The mix is made before the G.711 encoding, as noise at the caller's end would be.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from ari_offload.audio import SAMPLE_RATE, Pcm

NoiseKind = Literal["white", "pink", "brown"]
NOISE_KINDS: tuple[NoiseKind, ...] = ("white", "pink", "brown")
SPEECH_GATE_DBFS = -45.0  # as testbed/dialogue.py's SPEECH_DBFS
FRAME = 160  # 20 ms at 8 kHz
# Pink and brown power fall 3 and 6 dB an octave down to here and stay flat below: the
# lowest rumble (traffic, wind), with no DC wandering off.
FLOOR_HZ = 10.0


@dataclass(frozen=True)
class LineNoise:
    kind: NoiseKind
    snr_db: float
    seed: int = 1


def noise(kind: NoiseKind, samples: int, seed: int) -> npt.NDArray[np.float64]:
    """``samples`` of the noise at an RMS of 1."""
    white = np.random.default_rng(seed).normal(0.0, 1.0, samples)
    if kind == "white":
        shaped = white
    else:  # the spectrum times f^-1/2 (pink) or f^-1 (brown), flat below FLOOR_HZ
        spectrum = np.fft.rfft(white)
        hz = np.maximum(np.fft.rfftfreq(samples, 1 / SAMPLE_RATE), FLOOR_HZ)
        spectrum /= np.sqrt(hz) if kind == "pink" else hz
        spectrum[0] = 0.0
        shaped = np.fft.irfft(spectrum, samples)
    rms = float(np.sqrt(np.mean(shaped**2)))
    return shaped / rms if rms > 0 else shaped


def active_rms(pcm: Pcm) -> float:
    """The RMS of the 20 ms frames at or above the speech gate (0.0 if none is)."""
    usable = pcm[: pcm.size - pcm.size % FRAME].astype(np.float64).reshape(-1, FRAME)
    frame_rms = np.sqrt(np.mean(usable**2, axis=1))
    loud = frame_rms[frame_rms >= 32768.0 * 10 ** (SPEECH_GATE_DBFS / 20)]
    return float(np.sqrt(np.mean(loud**2))) if loud.size else 0.0


def with_noise(pcm: Pcm, line: LineNoise, speech_rms: float | None = None) -> Pcm:
    """``pcm`` with ``line``'s noise under all of it, at ``snr_db`` below the speech's active
    level (``speech_rms``, or measured on ``pcm`` itself)."""
    level = active_rms(pcm) if speech_rms is None else speech_rms
    if level <= 0.0:
        raise ValueError("no speech to set the noise level from")
    scaled = noise(line.kind, pcm.size, line.seed) * level / 10 ** (line.snr_db / 20)
    return np.clip(pcm + scaled, -32768, 32767).astype(np.int16)
