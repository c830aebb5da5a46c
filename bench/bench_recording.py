"""What recording a call costs: CPU and disk per minute of call.

The recorder's own work, as observe/recording.py does it, one second of call at a time:
50 caller frames and 50 played agent frames (both sides talking all the time: the worst case)
go through two real FrameTaps (the agent's payloads decoded, as RtpEndpoint does for
tap_played) into the shell's tap readers and the StereoTimeline; then, as every flush, the
settled second is appended to a real WAV file in a worker thread (header rewritten, free space
read). No sockets and no pacing: CPU time (process_time: every thread) over the run, divided by
the minutes of call recorded.

Run: .venv/bin/python -m bench.bench_recording [--minutes N] [--codec ulaw|slin16] [--dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import numpy as np

from ari_offload.media.g711 import Codec, codec_for
from ari_offload.media.port import MediaFrame, TapSet
from ari_offload.observe.recording import WavWriter, feed_timeline, free_bytes
from ari_offload.observe.stereo import AGENT, CALLER, CHANNELS, StereoTimeline
from ari_offload.observe.wav import WavFormat
from bench.machine import describe

FRAMES_PER_S = 50


async def record(minutes: int, codec: Codec, directory: Path) -> tuple[float, int]:
    """Record ``minutes`` of a call where both sides talk throughout; (CPU s, file bytes)."""
    rng = np.random.default_rng(1)
    size, rate = codec.frame_samples, codec.sample_rate
    speech = rng.integers(-12000, 12000, (FRAMES_PER_S, size)).astype(np.int16)
    payloads = [codec.encode(pcm) for pcm in speech]
    inbound, played = TapSet(), TapSet()
    timeline = StereoTimeline(rate)
    began = time.monotonic()
    readers = [
        asyncio.create_task(feed_timeline(taps.open(), side, timeline, began))
        for taps, side in ((inbound, CALLER), (played, AGENT))
    ]
    fmt = WavFormat(CHANNELS, rate)
    writer = await asyncio.to_thread(WavWriter.open, directory / "bench.wav", fmt)
    cpu = time.process_time()
    for second in range(minutes * 60):
        for i in range(FRAMES_PER_S):
            n = second * FRAMES_PER_S + i
            stamp, at = n * size, began + n / FRAMES_PER_S
            inbound.publish(MediaFrame(speech[i], payloads[i], n, stamp, at, rate))
            played.publish(MediaFrame(codec.decode(payloads[i]), payloads[i], n, stamp, at, rate))
            await asyncio.sleep(0)  # the readers run between frames, as in a call
        # Released up to a second ago (the hold): readers a few frames behind lose nothing.
        await asyncio.to_thread(writer.append, timeline.take(second + 1.0), free_bytes)
    inbound.close()
    played.close()
    await asyncio.gather(*readers)
    await asyncio.to_thread(writer.finish, timeline.finish())
    return time.process_time() - cpu, (directory / "bench.wav").stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=10, help="of call recorded")
    parser.add_argument("--codec", default="ulaw", help="ulaw (8 kHz) or slin16 (16 kHz)")
    parser.add_argument("--dir", type=Path, default=None, help="where the WAV goes (a temp dir)")
    args = parser.parse_args()
    codec = codec_for(args.codec)
    print(describe())
    print(
        f"method: {args.minutes} min of a {args.codec} call ({codec.sample_rate} Hz), both sides "
        "talking, 50+50 frames/s through real taps and the timeline, a real WAV appended once a "
        "second (header + statvfs); time.process_time over the run"
    )
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        cpu_s, size = asyncio.run(record(args.minutes, codec, Path(tmp)))
    per_minute_ms = cpu_s / args.minutes * 1000
    print(f"CPU : {per_minute_ms:.0f} ms per minute of call ({per_minute_ms / 600:.3f}% of a core)")
    print(f"disk: {size / args.minutes / 1e6:.2f} MB per minute of call ({size} B in all)")


if __name__ == "__main__":
    main()
