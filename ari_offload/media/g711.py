"""G.711 mu-law (PCMU, payload type 0) and A-law (PCMA, payload type 8) with numpy, and the
codec table, where slin16 (16 kHz signed linear, what chan_websocket carries wideband) sits
beside them.

The tables are built once at import, bit-exact with the classic Sun reference code that
Python's ``audioop`` used: encoding looks up all 65536 int16 values, decoding all 256 codes,
so each frame costs one numpy index instead of a Python loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ari_offload.audio import SAMPLE_RATE, WIDEBAND_RATE, Pcm, as_pcm, frame_samples

ULAW_SILENCE = 0xFF  # what 0 encodes to
ALAW_SILENCE = 0xD5  # decodes to 8: A-law has no code for 0

_SEG_ULAW_END = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_SEG_ALAW_END = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])
_ULAW_CLIP = 8159
_ULAW_BIAS = 0x84


def _all_int16() -> npt.NDArray[np.int32]:
    # Index i of an encode table is the int16 whose bit pattern is i (see _index).
    return np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.int16).astype(np.int32)


def _build_ulaw_encode() -> npt.NDArray[np.uint8]:
    value = _all_int16() >> 2  # the reference coder works on 14 bits
    mask = np.where(value < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(value), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    seg = np.searchsorted(_SEG_ULAW_END, magnitude)
    code = (np.minimum(seg, 7) << 4) | ((magnitude >> (np.minimum(seg, 7) + 1)) & 0x0F)
    code = np.where(seg >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def _build_ulaw_decode() -> npt.NDArray[np.int16]:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((code & 0x0F) << 3) + _ULAW_BIAS) << ((code & 0x70) >> 4)
    return np.where(code & 0x80, _ULAW_BIAS - t, t - _ULAW_BIAS).astype(np.int16)


def _build_alaw_encode() -> npt.NDArray[np.uint8]:
    value = _all_int16() >> 3  # the reference coder works on 13 bits
    negative = value < 0
    mask = np.where(negative, 0x55, 0xD5)
    magnitude = np.where(negative, -value - 1, value)
    seg = np.searchsorted(_SEG_ALAW_END, magnitude)
    shift = np.where(seg < 2, 1, np.minimum(seg, 7))
    code = (np.minimum(seg, 7) << 4) | ((magnitude >> shift) & 0x0F)
    code = np.where(seg >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def _build_alaw_decode() -> npt.NDArray[np.int16]:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (code & 0x70) >> 4
    base = ((code & 0x0F) << 4) + np.where(seg == 0, 8, 0x108)
    t: npt.NDArray[np.int32] = base << np.maximum(seg - 1, 0)
    return np.where(code & 0x80, t, -t).astype(np.int16)


_ULAW_ENCODE = _build_ulaw_encode()
_ULAW_DECODE = _build_ulaw_decode()
_ALAW_ENCODE = _build_alaw_encode()
_ALAW_DECODE = _build_alaw_decode()


def _index(pcm: npt.ArrayLike) -> npt.NDArray[np.uint16]:
    return as_pcm(pcm).view(np.uint16)


def _codes(data: bytes) -> npt.NDArray[np.uint8]:
    return np.frombuffer(data, dtype=np.uint8)


def ulaw_encode(pcm: Pcm) -> bytes:
    return _ULAW_ENCODE[_index(pcm)].tobytes()


def ulaw_decode(data: bytes) -> Pcm:
    return _ULAW_DECODE[_codes(data)]


def alaw_encode(pcm: Pcm) -> bytes:
    return _ALAW_ENCODE[_index(pcm)].tobytes()


def alaw_decode(data: bytes) -> Pcm:
    return _ALAW_DECODE[_codes(data)]


def slin_encode(pcm: Pcm) -> bytes:
    return as_pcm(pcm).astype("<i2", copy=False).tobytes()


def slin_decode(data: bytes) -> Pcm:
    """Little-endian, as Asterisk sends it (measured on the test bed); a stray odd byte is cut."""
    return np.frombuffer(data[: len(data) - len(data) % 2], dtype="<i2").astype(np.int16)


@dataclass(frozen=True)
class Codec:
    name: str
    payload_type: int
    sample_rate: int
    silence: int  # the byte 0 encodes to, for padding partial frames
    encode: Callable[[Pcm], bytes]
    decode: Callable[[bytes], Pcm]
    sample_width: int = 1  # bytes per sample on the wire

    @property
    def frame_samples(self) -> int:
        """Samples in one 20 ms frame."""
        return frame_samples(self.sample_rate)

    @property
    def frame_bytes(self) -> int:
        return self.frame_samples * self.sample_width


ULAW = Codec("ulaw", 0, SAMPLE_RATE, ULAW_SILENCE, ulaw_encode, ulaw_decode)
ALAW = Codec("alaw", 8, SAMPLE_RATE, ALAW_SILENCE, alaw_encode, alaw_decode)
# 118: the dynamic type chan_rtp sends slin16 with; it drops it coming back, so the "rtp"
# transport refuses slin16 (transports.py) and only chan_websocket carries it.
SLIN16 = Codec("slin16", 118, WIDEBAND_RATE, 0, slin_encode, slin_decode, sample_width=2)
CODECS = {codec.name: codec for codec in (ULAW, ALAW, SLIN16)}


def codec_for(name: str) -> Codec:
    try:
        return CODECS[name]
    except KeyError:
        allowed = ", ".join(repr(n) for n in CODECS)
        raise ValueError(f"unknown codec {name!r}: expected one of {allowed}") from None
