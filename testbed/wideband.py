"""Wideband test callers: 16 kHz speech as G.722 (RTP payload type 9), which SIPp 3.6 streams
(its rtp_stream knows PT 9: 160 bytes per 20 ms) and Asterisk decodes to 16 kHz.

G.722 is encoded with libg722 (PyPI ``g722``, a dev dependency) over the whole script at
once: it is ADPCM, so encoding pieces apart would put a step at each seam.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Callable

import numpy as np

from ari_offload.audio import WIDEBAND_RATE, Pcm, as_pcm
from testbed.audio import CACHE_DIR
from testbed.dialogue import Say, Step

G722_BIT_RATE = 64000  # bytes per second on the wire: 8000, as G.711's
G722_PT = 9

Voice16 = Callable[[str], Pcm]  # text -> 16 kHz speech


def g722_encode(pcm: Pcm) -> bytes:
    import G722

    encoded: bytes = G722.G722(WIDEBAND_RATE, G722_BIT_RATE).encode(as_pcm(pcm))
    return encoded


def g722_decode(data: bytes) -> Pcm:
    """One packet or a whole stream (a fresh decoder each call: levels, not hi-fi)."""
    import G722

    return np.asarray(G722.G722(WIDEBAND_RATE, G722_BIT_RATE).decode(data), dtype=np.int16)


def espeak16(text: str) -> Pcm:
    """espeak-ng's voice at 16 kHz (it speaks at 22.05 kHz; sox resamples), cached."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} not found: run scripts/install-testbed")
    key = hashlib.sha256(f"{text}|s16".encode()).hexdigest()[:16]
    out = CACHE_DIR / f"{key}.s16"
    if not out.exists():
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        wav = out.with_suffix(".wav")
        subprocess.run(["espeak-ng", "-w", str(wav), text], check=True, capture_output=True)
        subprocess.run(
            ["sox", str(wav), "-r", str(WIDEBAND_RATE), "-c", "1", "-b", "16", "-e", "signed",
             "-t", "raw", str(out) + ".tmp"],
            check=True, capture_output=True,
        )  # fmt: skip
        (out.parent / (out.name + ".tmp")).rename(out)
        wav.unlink()
    return np.frombuffer(out.read_bytes(), dtype="<i2").astype(np.int16)


def script16(steps: list[Step], voice: Voice16 = espeak16) -> tuple[Pcm, list[tuple[float, float]]]:
    """The caller's whole audio at 16 kHz, and where each Say is in it (start, end seconds)."""
    parts: list[Pcm] = []
    spans: list[tuple[float, float]] = []
    at = 0
    for step in steps:
        if isinstance(step, Say):
            speech = voice(step.text)
            spans.append((at / WIDEBAND_RATE, (at + len(speech)) / WIDEBAND_RATE))
            parts.append(speech)
        else:
            parts.append(np.zeros(int(step.seconds * WIDEBAND_RATE), np.int16))
        at += len(parts[-1])
    return np.concatenate(parts), spans
