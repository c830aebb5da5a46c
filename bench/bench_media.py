"""Per-frame CPU cost of the media plane's sans-IO path (no sockets, no event loop).

    inbound   RtpPacket.parse + JitterBuffer.add + ulaw_decode       (one 20 ms frame)
    outbound  Playout.add_pcm (ulaw_encode) + take_frame + report_played
              + RtpPacketizer.packet + bytes(packet)                 (one 20 ms frame)

Run: .venv/bin/python bench/bench_media.py [--frames N] [--runs R]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import time
from collections.abc import Callable

import numpy as np

from ari_offload.audio import FRAME_S, FRAME_SAMPLES, Pcm
from ari_offload.media.g711 import ULAW, ulaw_decode
from ari_offload.media.jitter import JitterBuffer
from ari_offload.media.packetizer import RtpPacketizer
from ari_offload.media.playout import Playout
from ari_offload.media.rtp import RtpPacket


def inbound_datagrams(n: int, rng: random.Random) -> list[bytes]:
    # Asterisk-like stream with 1 in 50 neighbours swapped, so the jitter buffer reorders.
    datagrams = [
        bytes(RtpPacket(0, i & 0xFFFF, i * 160, 0x5EED, rng.randbytes(FRAME_SAMPLES)))
        for i in range(n)
    ]
    for i in range(1, n - 1, 50):
        datagrams[i], datagrams[i + 1] = datagrams[i + 1], datagrams[i]
    return datagrams


def outbound_frames(n: int, rng: random.Random) -> list[Pcm]:
    return [
        np.array([rng.randint(-20000, 20000) for _ in range(FRAME_SAMPLES)], dtype=np.int16)
        for _ in range(n)
    ]


def run_inbound(datagrams: list[bytes]) -> int:
    jitter = JitterBuffer(4)
    decoded = 0
    for data in datagrams:
        for packet in jitter.add(RtpPacket.parse(data)):
            decoded += len(ulaw_decode(packet.payload))
    return decoded


def run_outbound(frames: list[Pcm]) -> int:
    # What RtpEndpoint does per slot: queue, take the frame, count it played, packetize.
    playout = Playout(ULAW)
    packetizer = RtpPacketizer(0, rng=random.Random(0))
    size = 0
    for pcm in frames:
        playout.add_pcm(pcm)
        frame = playout.take_frame()
        assert frame is not None
        playout.report_played(frame.samples)
        size += len(bytes(packetizer.packet(frame.payload)))
    return size


def per_frame_us(work: Callable[[], int], frames: int, runs: int) -> list[float]:
    work()  # warm-up: first-call costs are not per-frame costs
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        timings.append((time.perf_counter() - start) / frames * 1e6)
    return timings


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(42)
    datagrams = inbound_datagrams(args.frames, rng)
    frames = outbound_frames(args.frames, rng)

    print(f"platform : {platform.platform()}")
    print(f"cpu      : {cpu_model()}, {os.cpu_count()} logical CPUs")
    print(f"python   : {platform.python_version()}, numpy {np.__version__}")
    print(
        f"method   : {args.frames} frames of 160 B ulaw per run, {args.runs} runs after one "
        "warm-up, time.perf_counter, one thread; per-frame time = run time / frames"
    )
    results = {
        "inbound  parse+jitter+decode": per_frame_us(
            lambda: run_inbound(datagrams), args.frames, args.runs
        ),
        "outbound playout+encode+packetize+serialise": per_frame_us(
            lambda: run_outbound(frames), args.frames, args.runs
        ),
    }
    total = 0.0
    for name, timings in results.items():
        best, median = min(timings), statistics.median(timings)
        total += median
        print(f"{name:45s}: median {median:6.2f} us/frame, best {best:6.2f} us/frame")
    # One call needs one frame each way every 20 ms.
    calls = FRAME_S * 1e6 / total
    print(f"both directions: {total:.2f} us per 20 ms frame = {calls:.0f} calls per core")
    print("  (this path only: no VAD/STT/TTS, no socket syscalls, no event loop)")


if __name__ == "__main__":
    main()
