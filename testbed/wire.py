"""Many calls' RTP at the callers, in one capture, and each turn's latency on the wire beside
the app's own figure for it.

A latency benchmark must not load the machine it measures: one capture process for every
call (dumpcap writing a file, read once the calls are over) instead of a tshark per call
parsing lines in the measuring process while the calls run. Caller packets are those from
a SIPp media port, agent packets those to it (SIPp's media ports are 30000-39000).

Pairing: the app records the agent's line when the reply's first audio goes out; the turn
on the wire whose reply started closest to that moment (within ``PAIR_WINDOW_S``) is the
same turn. Both clocks are the machine's wall clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ari_offload.media.g711 import codec_for
from ari_offload.sdk.client import Client
from testbed.capture import CapturedPacket, _parse_line
from testbed.dialogue import REPLY_GAP_S, Burst, bursts

SIPP_MEDIA_PORTS = "30000-39003"
PAIR_WINDOW_S = 0.3
START_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class WireTurn:
    """One caller utterance and the reply the caller heard to it (None: missed)."""

    media_port: int
    said_end: float  # wall clock of the caller's last speech packet's end
    reply_start: float | None
    latency_s: float | None
    stalled: bool = False  # the reply stopped for over REPLY_GAP_S before the caller spoke again


@dataclass(frozen=True)
class AppTurn:
    """The app's record of one turn: when its reply went out and its breakdown (ms)."""

    reply_at: float
    parts: dict[str, float | None]


class WireCapture:
    """dumpcap on lo for the SIPp media ports, to a file; parsed after ``stop``."""

    def __init__(self) -> None:
        if shutil.which("dumpcap") is None or shutil.which("tshark") is None:
            raise RuntimeError("dumpcap/tshark not found: run scripts/install-testbed")
        self._dir = Path(tempfile.mkdtemp(prefix="aoff-wire-"))
        self.path = self._dir / "calls.pcap"
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            "dumpcap", "-q", "-i", "lo", "-f", f"udp portrange {SIPP_MEDIA_PORTS}",
            "-w", str(self.path), "-P",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert self._proc.stderr is not None
        async with asyncio.timeout(START_TIMEOUT_S):
            while not self.path.exists():
                if self._proc.returncode is not None:
                    raise RuntimeError("dumpcap exited before capturing (are you root?)")
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # the capture filter is armed once the file is there

    async def stop(self) -> list[CapturedPacket]:
        if self._proc is not None and self._proc.returncode is None:
            await asyncio.sleep(0.3)
            self._proc.terminate()
            with contextlib.suppress(ProcessLookupError):
                await self._proc.wait()
        reader = await asyncio.create_subprocess_exec(
            "tshark", "-r", str(self.path), "-n", "-T", "fields", "-e", "frame.time_epoch",
            "-e", "udp.srcport", "-e", "udp.dstport", "-e", "udp.payload",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        out, _ = await reader.communicate()
        packets = [_parse_line(line) for line in out.decode(errors="replace").splitlines()]
        return [p for p in packets if p is not None]


def wire_turns(packets: list[CapturedPacket], media_ports: list[int]) -> list[WireTurn]:
    """Per call (its SIPp media port), per caller utterance: the wire latency."""
    decode = codec_for("ulaw").decode
    by_port: dict[int, tuple[list[CapturedPacket], list[CapturedPacket]]] = defaultdict(
        lambda: ([], [])
    )
    wanted = set(media_ports)
    for packet in packets:
        if packet.src_port in wanted:
            by_port[packet.src_port][0].append(packet)
        elif packet.dst_port in wanted:
            by_port[packet.dst_port][1].append(packet)
    turns: list[WireTurn] = []
    for port in media_ports:
        sent, received = by_port[port]
        caller = bursts(sent, decode, gap_s=0.3)
        agent = bursts(received, decode, gap_s=REPLY_GAP_S)
        turns += _latencies(port, caller, agent)
    return turns


def _latencies(port: int, caller: list[Burst], agent: list[Burst]) -> list[WireTurn]:
    out: list[WireTurn] = []
    for i, said in enumerate(caller):
        next_said = caller[i + 1].start if i + 1 < len(caller) else float("inf")
        replies = [b for b in agent if said.end <= b.start < next_said]
        if replies:
            reply = replies[0]
            stalled = len(replies) > 1
            out.append(WireTurn(port, said.end, reply.start, reply.start - said.end, stalled))
        else:
            out.append(WireTurn(port, said.end, None, None))
    return out


async def app_turns(client: Client, since: datetime) -> list[AppTurn]:
    """Every turn the app measured in calls started since ``since``, with its reply time."""
    out: list[AppTurn] = []
    for call in await client.calls.list(limit=500):
        if call.started_at is not None and call.started_at < since:
            continue
        detail = await client.calls.get(call.id)
        replies = [line.at for line in detail.transcript if line.role == "agent"]
        for turn, at in zip(detail.turns, replies, strict=False):
            if at is not None:
                parts = {
                    name: getattr(turn, name)
                    for name in ("endpoint_ms", "stt_ms", "webhook_ms", "tts_first_audio_ms")
                }
                out.append(AppTurn(at.timestamp(), {**parts, "total_ms": turn.total_ms}))
    return out


def pair(wire: list[WireTurn], app: list[AppTurn]) -> list[tuple[WireTurn, AppTurn]]:
    """Each measured wire turn with the app turn whose reply went out nearest its start."""
    pairs = []
    free = sorted(app, key=lambda t: t.reply_at)
    for turn in wire:
        if turn.reply_start is None or not free:
            continue
        start = turn.reply_start
        best = min(free, key=lambda t: abs(t.reply_at - start))
        if abs(best.reply_at - start) <= PAIR_WINDOW_S:
            pairs.append((turn, best))
            free.remove(best)
    return pairs
