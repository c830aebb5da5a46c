"""Capture the RTP of one test call on the loopback interface with tshark.

The capture is the caller's view: packets TO the SIPp media port are what the caller heard,
packets FROM it are what the caller said.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from dataclasses import dataclass

from ari_offload.media.rtp import RtpPacket

YIELD_EVERY_LINES = 10  # under GIL contention a line costs ~3 ms: 100 held the loop 0.33 s
START_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class CapturedPacket:
    time: float
    src_port: int
    dst_port: int
    packet: RtpPacket
    data: bytes  # the datagram as captured
    src_ip: str = ""  # where it came from (in a cluster: which node's Asterisk)


class RtpCapture:
    def __init__(self, port: int) -> None:
        if shutil.which("tshark") is None:
            raise RuntimeError("tshark not found: run scripts/install-testbed")
        self.port = port
        self.packets: list[CapturedPacket] = []
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            "tshark", "-i", "lo", "-f", f"udp port {self.port}", "-l", "-n",
            "-T", "fields", "-e", "frame.time_epoch", "-e", "udp.srcport",
            "-e", "udp.dstport", "-e", "udp.payload", "-e", "ip.src",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert self._proc.stderr is not None
        # tshark says "Capturing on 'Loopback: lo'" once packets are being captured.
        async with asyncio.timeout(START_TIMEOUT_S):
            while b"Capturing on" not in await self._proc.stderr.readline():
                if self._proc.returncode is not None:
                    raise RuntimeError("tshark exited before capturing (are you root?)")
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        count = 0
        async for line in self._proc.stdout:
            parsed = _parse_line(line.decode(errors="replace"))
            if parsed is not None:
                self.packets.append(parsed)
            count += 1
            if count % YIELD_EVERY_LINES == 0:
                # Lines already buffered are read without yielding: tshark's flush at stop
                # (thousands of packets) would otherwise hold the loop for half a second.
                await asyncio.sleep(0)

    async def stop(self) -> list[CapturedPacket]:
        if self._proc is not None and self._proc.returncode is None:
            await asyncio.sleep(0.3)  # let the last packets through tshark's pipe
            self._proc.terminate()
            with contextlib.suppress(ProcessLookupError):
                await self._proc.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        return self.packets

    def received(self) -> list[CapturedPacket]:
        """Packets sent to the captured port (what the caller heard)."""
        return [p for p in self.packets if p.dst_port == self.port]

    def sent(self) -> list[CapturedPacket]:
        return [p for p in self.packets if p.src_port == self.port]


def _parse_line(line: str) -> CapturedPacket | None:
    parts = line.strip().split("\t")  # ip.src, the fifth field, only if asked for
    if len(parts) not in (4, 5) or not parts[3]:
        return None
    try:
        data = bytes.fromhex(parts[3].replace(":", ""))
        packet = RtpPacket.parse(data)
    except ValueError:
        return None  # RTCP or other non-RTP traffic on the port
    src_ip = parts[4] if len(parts) == 5 else ""
    return CapturedPacket(float(parts[0]), int(parts[1]), int(parts[2]), packet, data, src_ip)


def payload_bytes(packets: list[CapturedPacket]) -> bytes:
    """The audio of a packet list, in sequence order (captures can interleave)."""
    ordered = sorted(packets, key=lambda p: p.time)
    return b"".join(p.packet.payload for p in ordered)
