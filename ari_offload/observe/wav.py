"""The WAV file of a call recording (sans-IO): its header, and the header a file's size implies.

A recording is written while the call runs: audio is appended and the header's two sizes
(RIFF and data) are rewritten every few seconds and at the end. A process killed in between
leaves a header that counts less audio than the file holds: still a valid, playable WAV,
short of the last seconds. ``repaired_header`` gives the header the file's actual size
implies, so the API serves all of it and a resumed recording (the call adopted after a
restart) appends after the last whole frame.

Only the canonical 44-byte PCM header this module writes is read back: anything else is a
``ValueError``, never a guess.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

HEADER_BYTES = 44
SAMPLE_WIDTH = 2  # 16-bit signed, little-endian
_PCM = 1
_RIFF_FIXED = HEADER_BYTES - 8  # the RIFF size counts everything after its own 8 bytes
_MAX_DATA = 0xFFFFFFFF - _RIFF_FIXED  # the 32-bit RIFF size caps a file at ~4 GiB
_LAYOUT = struct.Struct("<4sI4s4sIHHIIHH4sI")


@dataclass(frozen=True)
class WavFormat:
    channels: int
    rate: int

    @property
    def frame_bytes(self) -> int:
        """Bytes of one sample of every channel (the WAV block align)."""
        return self.channels * SAMPLE_WIDTH


def wav_header(fmt: WavFormat, data_bytes: int) -> bytes:
    """The 44-byte header of a PCM WAV holding ``data_bytes`` of audio."""
    if not 0 <= data_bytes <= _MAX_DATA:
        raise ValueError(f"a WAV holds 0 to {_MAX_DATA} bytes of audio, not {data_bytes}")
    return _LAYOUT.pack(
        b"RIFF", _RIFF_FIXED + data_bytes, b"WAVE",
        b"fmt ", 16, _PCM, fmt.channels, fmt.rate, fmt.rate * fmt.frame_bytes,
        fmt.frame_bytes, SAMPLE_WIDTH * 8,
        b"data", data_bytes,
    )  # fmt: skip


def parse_header(header: bytes) -> tuple[WavFormat, int]:
    """(format, data size the header states) of a header ``wav_header`` wrote."""
    if len(header) < HEADER_BYTES:
        raise ValueError(f"a recording starts with a {HEADER_BYTES}-byte header: too short")
    riff, _, wave, fmt_id, fmt_size, kind, channels, rate, byte_rate, align, bits, data_id, data = (
        _LAYOUT.unpack(header[:HEADER_BYTES])
    )
    if (riff, wave, fmt_id, data_id, fmt_size) != (b"RIFF", b"WAVE", b"fmt ", b"data", 16):
        raise ValueError("not a canonical WAV header (RIFF/WAVE, fmt of 16 bytes, then data)")
    fmt = WavFormat(channels, rate)
    if kind != _PCM or bits != SAMPLE_WIDTH * 8 or channels < 1 or rate < 1:
        raise ValueError("not 16-bit PCM")
    if align != fmt.frame_bytes or byte_rate != rate * fmt.frame_bytes:
        raise ValueError("inconsistent block align or byte rate")
    return fmt, data


def audio_bytes(fmt: WavFormat, file_size: int) -> int:
    """The whole frames of audio a file of ``file_size`` bytes holds after its header."""
    available = max(0, min(file_size - HEADER_BYTES, _MAX_DATA))
    return available - available % fmt.frame_bytes


def repaired_header(header: bytes, file_size: int) -> tuple[bytes, int]:
    """The header for what the file actually holds, and that audio's size in bytes."""
    fmt, _ = parse_header(header)
    data = audio_bytes(fmt, file_size)
    return wav_header(fmt, data), data
