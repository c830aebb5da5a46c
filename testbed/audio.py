"""Caller speech for tests and the demo: espeak-ng text -> raw 8 kHz G.711 files."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

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
