"""RFC 4733 DTMF for test callers: a pcap SIPp plays as the caller's keys, and the keys read
back from captured RTP.

SIPp 3.6's own ``play_dtmf`` sends malformed events (payload type 97, event 0, duration 0:
seen on the wire), so the test caller plays a pcap instead, as SIPp's shipped
``dtmf_2833_N.pcap`` files do; those have only the digits 0-9, and a test needs ``#`` too.
SIPp takes the RTP from the pcap's UDP payloads and their timing from its timestamps.

While keys play, the caller's voice stream is paused, as a phone's is: Asterisk ends an event
when a voice packet comes in the middle of it, so a key played over a running voice stream
is heard as one key per event packet (seen: "1" seven times for one press).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from testbed.capture import CapturedPacket

EVENT_PT = 101  # what the test caller's SDP offers for telephone-event/8000
EVENTS = "0123456789*#ABCD"  # RFC 4733 event codes 0-15, in order
KEY_MS = 160  # each key held this long
GAP_MS = 100  # between keys
WAIT_MS = 500  # "w" in a digit string, as Asterisk's
_PACKET_MS = 20
_END_REPEATS = 3  # the end packet is sent three times (RFC 4733 2.5.1.4)


def keys_seconds(digits: str) -> float:
    """How long pressing ``digits`` takes (its pcap's length, "w" waits included)."""
    pressed = sum(1 for key in digits if key != "w")
    return (pressed * (KEY_MS + GAP_MS) + digits.count("w") * WAIT_MS) / 1000


def dtmf_pcap(digits: str, path: Path) -> Path:
    """Write a pcap of RFC 4733 events for ``digits`` (and ``w`` waits) to ``path``."""
    packets: list[tuple[float, bytes]] = []
    at_ms, seq, timestamp = 0.0, 1000, 8000
    for key in digits:
        if key == "w":
            at_ms += WAIT_MS
            continue
        event = EVENTS.index(key)
        steps = KEY_MS // _PACKET_MS
        for step in range(1, steps + 1):
            duration = step * _PACKET_MS * 8
            end = step == steps
            payload = struct.pack("!BBH", event, (0x80 if end else 0) | 10, duration)
            header = struct.pack(
                "!BBHII", 0x80, (0x80 if step == 1 else 0) | EVENT_PT, seq, timestamp, 0xD7F0
            )
            # The end is repeated as the same packet, sequence number too: a receiver
            # counting each copy with a new number as a new key would hear it thrice.
            packets += [(at_ms / 1000, header + payload)] * (_END_REPEATS if end else 1)
            seq += 1
            at_ms += _PACKET_MS
        timestamp += (KEY_MS + GAP_MS) * 8
        at_ms += GAP_MS
    path.write_bytes(_pcap(packets))
    return path


def _pcap(packets: list[tuple[float, bytes]]) -> bytes:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]  # Ethernet link type
    for at, rtp in packets:
        udp = struct.pack("!HHHH", 6000, 6000, 8 + len(rtp), 0) + rtp
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
            bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]),
        )  # fmt: skip
        ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
        frame = b"\x00" * 12 + b"\x08\x00" + ip + udp
        seconds, micros = int(at), round((at - int(at)) * 1e6)
        out.append(struct.pack("<IIII", 1_700_000_000 + seconds, micros, len(frame), len(frame)))
        out.append(frame)
    return b"".join(out)


def _checksum(header: bytes) -> int:
    total = sum(int(v) for v in struct.unpack(f"!{len(header) // 2}H", header))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF


@dataclass(frozen=True)
class HeardKey:
    key: str
    time: float  # capture time of the event's first packet
    duration_ms: float


def keys_in(packets: list[CapturedPacket]) -> list[HeardKey]:
    """The RFC 4733 keys in captured RTP (any dynamic payload type carrying 4-byte events):
    one per event, told apart by RTP timestamp (an event's packets share it)."""
    found: dict[tuple[int, int], HeardKey] = {}
    for p in sorted(packets, key=lambda p: p.time):
        payload = p.packet.payload
        if p.packet.payload_type < 96 or len(payload) != 4 or payload[0] >= len(EVENTS):
            continue
        duration_ms = struct.unpack("!H", payload[2:4])[0] / 8
        ident = (p.packet.ssrc, p.packet.timestamp)
        first = found.get(ident)
        key = EVENTS[payload[0]]
        found[ident] = HeardKey(key, first.time if first else p.time, duration_ms)
    return sorted(found.values(), key=lambda k: k.time)
