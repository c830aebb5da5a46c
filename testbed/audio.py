"""Caller speech for tests and the demo: espeak-ng text -> raw 8 kHz G.711 files."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ari_offload.media.g711 import codec_for

CACHE_DIR = Path(tempfile.gettempdir()) / "ari-offload-speech"
SOX_ENCODING = {"ulaw": "mu-law", "alaw": "a-law"}


def speech_file(
    text: str, codec: str = "ulaw", lead_silence_s: float = 0.5, tail_silence_s: float = 0.0
) -> Path:
    """espeak-ng speaks `text`; sox makes it 8 kHz G.711 with silence around it (cached)."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} not found: run scripts/install-testbed")
    key = hashlib.sha256(f"{text}|{codec}|{lead_silence_s}|{tail_silence_s}".encode()).hexdigest()
    out = CACHE_DIR / f"{key[:16]}.{codec}"
    if out.exists():
        return out
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    wav = out.with_suffix(".wav")
    subprocess.run(["espeak-ng", "-w", str(wav), text], check=True, capture_output=True)
    subprocess.run(
        ["sox", str(wav), "-r", "8000", "-c", "1", "-e", SOX_ENCODING[codec], "-t", "raw",
         str(out) + ".tmp", "pad", str(lead_silence_s), str(tail_silence_s)],
        check=True, capture_output=True,
    )  # fmt: skip
    Path(str(out) + ".tmp").rename(out)
    wav.unlink()
    return out


def silence_file(seconds: float, codec: str = "ulaw") -> Path:
    """Digital silence, e.g. to keep a caller on the line without speaking."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    out = CACHE_DIR / f"silence-{seconds}.{codec}"
    if not out.exists():
        byte = b"\xff" if codec == "ulaw" else b"\xd5"
        out.write_bytes(byte * int(seconds * 8000))
    return out


def cough_audio(codec: str = "ulaw", ms: int = 450, seed: int = 1) -> bytes:
    """A cough-like sound as raw 8 kHz G.711: a noise burst with a 15 ms attack and a 200 ms
    decay. webrtcvad calls every 20 ms of it speech (it barges in) and whisper tiny.en hears
    no words in it (seeds 1-8 checked, with the VAD's pre- and post-roll around it)."""
    rng = np.random.default_rng(seed)
    t = np.arange(8 * ms) / 8000
    envelope = np.minimum(1.0, t / 0.015) * np.exp(-t / 0.2)
    noise = np.convolve(rng.normal(0.0, 1.0, len(t)), np.ones(4) / 4, "same")  # some body
    return codec_for(codec).encode((envelope * noise * 12000).astype(np.int16))
