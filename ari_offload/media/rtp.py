"""RTP packets (RFC 3550 section 5.1) and 16-bit sequence-number arithmetic.

Sans-IO: ``RtpPacket.parse(data)`` turns a datagram into a packet or raises ``ValueError``
with an exact message; ``bytes(packet)`` is the wire form, and for any valid datagram
``bytes(RtpPacket.parse(data)) == data`` (padding and header extension included).

    0                   1                   2                   3
    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
   |V=2|P|X|  CC   |M|     PT      |       sequence number         |
   |                           timestamp                           |
   |                             SSRC                              |
   |                  CSRC list (CC x 32 bits)                     |
   |  extension profile            |  extension length (words)     |  if X
   |                  extension data (length x 32 bits)            |
   |  payload ...                  |  padding ...  | padding count |  if P
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

RTP_VERSION = 2
HEADER_SIZE = 12
MAX_CSRC = 15

_HEADER = struct.Struct("!BBHII")
_EXTENSION_HEADER = struct.Struct("!HH")
_U16 = 0xFFFF
_U32 = 0xFFFFFFFF


def seq_add(seq: int, n: int) -> int:
    """``seq + n`` on the 16-bit circle (65535 + 1 == 0)."""
    return (seq + n) & _U16


def seq_diff(a: int, b: int) -> int:
    """Signed distance ``a - b`` on the 16-bit circle, in [-32768, 32767]."""
    return ((a - b + 0x8000) & _U16) - 0x8000


def seq_lt(a: int, b: int) -> bool:
    """True if ``a`` comes before ``b`` in a wrapping sequence (65535 comes before 0)."""
    return seq_diff(a, b) < 0


@dataclass(frozen=True, slots=True)
class RtpExtension:
    """The header extension: a profile-defined 16-bit id and data in whole 32-bit words."""

    profile: int
    data: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.profile <= _U16:
            raise ValueError(f"extension profile {self.profile} is not a 16-bit value")
        if len(self.data) % 4 or len(self.data) > 4 * _U16:
            raise ValueError(
                f"extension data is {len(self.data)} bytes: "
                "it must be whole 32-bit words, at most 65535 of them"
            )


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet. ``padding`` holds the raw padding octets; the last one is their count."""

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension: RtpExtension | None = None
    padding: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.payload_type <= 127:
            raise ValueError(f"payload type {self.payload_type} is not in 0..127")
        if not 0 <= self.sequence_number <= _U16:
            raise ValueError(f"sequence number {self.sequence_number} is not in 0..65535")
        if not (0 <= self.timestamp <= _U32 and 0 <= self.ssrc <= _U32):
            raise ValueError("timestamp and SSRC must be unsigned 32-bit values")
        if len(self.csrc) > MAX_CSRC or any(not 0 <= c <= _U32 for c in self.csrc):
            raise ValueError("at most 15 CSRCs, each an unsigned 32-bit value")
        if self.padding and self.padding[-1] != len(self.padding):
            raise ValueError(
                f"the last padding octet must be the padding length {len(self.padding)}, "
                f"got {self.padding[-1]}"
            )

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        size = len(data)
        if size < HEADER_SIZE:
            raise ValueError(f"RTP packet too short: {size} bytes, the header needs 12")
        first, second, seq, timestamp, ssrc = _HEADER.unpack_from(data)
        version = first >> 6
        if version != RTP_VERSION:
            raise ValueError(f"RTP version must be 2, got {version}")
        csrc_count = first & 0x0F
        pos = HEADER_SIZE + 4 * csrc_count
        if pos > size:
            raise ValueError(
                f"RTP CSRC list overruns the packet: {csrc_count} CSRCs need {pos} bytes, "
                f"the packet has {size}"
            )
        csrc = struct.unpack_from(f"!{csrc_count}I", data, HEADER_SIZE) if csrc_count else ()
        extension = None
        if first & 0x10:
            extension, pos = _parse_extension(data, pos)
        end, padding = size, b""
        if first & 0x20:
            end = size - _padding_size(data, pos)
            padding = bytes(data[end:])
        return cls(
            payload_type=second & 0x7F,
            sequence_number=seq,
            timestamp=timestamp,
            ssrc=ssrc,
            payload=bytes(data[pos:end]),
            marker=bool(second & 0x80),
            csrc=csrc,
            extension=extension,
            padding=padding,
        )

    def __bytes__(self) -> bytes:
        first = RTP_VERSION << 6 | len(self.csrc)
        if self.padding:
            first |= 0x20
        if self.extension is not None:
            first |= 0x10
        second = self.payload_type | (0x80 if self.marker else 0)
        parts = [_HEADER.pack(first, second, self.sequence_number, self.timestamp, self.ssrc)]
        if self.csrc:
            parts.append(struct.pack(f"!{len(self.csrc)}I", *self.csrc))
        if self.extension is not None:
            ext = self.extension
            parts.append(_EXTENSION_HEADER.pack(ext.profile, len(ext.data) // 4))
            parts.append(ext.data)
        parts.append(self.payload)
        parts.append(self.padding)
        return b"".join(parts)


def _parse_extension(data: bytes, pos: int) -> tuple[RtpExtension, int]:
    if pos + 4 > len(data):
        raise ValueError(
            f"RTP extension header overruns the packet: it needs {pos + 4} bytes, "
            f"the packet has {len(data)}"
        )
    profile, words = _EXTENSION_HEADER.unpack_from(data, pos)
    start = pos + 4
    end = start + 4 * words
    if end > len(data):
        raise ValueError(
            f"RTP extension data overruns the packet: {words} words need {end} bytes, "
            f"the packet has {len(data)}"
        )
    return RtpExtension(profile, bytes(data[start:end])), end


def _padding_size(data: bytes, payload_start: int) -> int:
    available = len(data) - payload_start
    if available == 0:
        raise ValueError("RTP padding flag set but nothing follows the header")
    size = data[-1]
    if size == 0:
        # A count of 0 is invalid: the count octet itself is part of the padding.
        raise ValueError("RTP padding flag set but the padding count is 0")
    if size > available:
        raise ValueError(
            f"RTP padding overruns the packet: {size} bytes of padding, "
            f"{available} bytes after the header"
        )
    return size
