"""The media transports' own CPU: app CPU per second of call, both directions, no speech.

    .venv/bin/python -m bench.bench_transport_cpu [--calls 4] [--seconds 20] [--rounds 2]

Method: the app's call controller runs in this process on the test-bed Asterisk 22 with the
built-in ``echo`` flow (every caller frame is played back: 50 frames a second each way, the
media plane's full load with no speech engine at all); ``--calls`` SIPp callers (G.711 mu-law,
one process each) stream ``--seconds`` of speech at once. CPU = this process's user + system
time (getrusage) over the calls, divided by call-seconds; SIPp, Asterisk and dumpcap are
other processes. Transports: RTP (ulaw), chan_websocket ulaw, chan_websocket slin16 (Asterisk
transcodes the caller's ulaw to 16 kHz: twice the samples and bytes). Rounds alternate the
transports. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import time

from ari_offload.config import MediaSettings, Settings
from ari_offload.flows.builtin import BUILTIN_FLOWS
from ari_offload.flows.dispatch import FlowDispatcher
from ari_offload.service import AriService
from bench.machine import describe
from testbed.asterisk import TESTBED_ARI, Testbed
from testbed.audio import CACHE_DIR
from testbed.dialogue import Say, Silence, Step, script_audio
from testbed.sipp import SippCall

TRANSPORTS = {
    "rtp ulaw": MediaSettings(transport="rtp", codec="ulaw"),
    "websocket ulaw": MediaSettings(transport="websocket", codec="ulaw"),
    "websocket slin16": MediaSettings(transport="websocket", codec="slin16"),
}


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def one_round(media: MediaSettings, calls: int, seconds: float) -> float:
    """CPU ms per call-second over ``calls`` echo calls of ``seconds`` each."""
    service = AriService(Settings(ari=TESTBED_ARI, media=media), FlowDispatcher(BUILTIN_FLOWS))
    await service.start()
    try:
        await service.wait_connected()
        steps: list[Step] = []
        while len(script_audio(steps)) < seconds * 8000:
            steps += [Say("This is a test of the media plane, one two three."), Silence(0.5)]
        path = CACHE_DIR / "bench-transport-cpu.ulaw"
        path.write_bytes(script_audio(steps))
        placed = [SippCall("7000", path, hangup_after_s=seconds) for _ in range(calls)]
        await asyncio.sleep(1.0)  # settle
        before, started = cpu_s(), time.monotonic()
        results = await asyncio.gather(*(call.run() for call in placed))
        used, wall = cpu_s() - before, time.monotonic() - started
    finally:
        await service.stop()
    failed = sum(not r.ok for r in results)
    if failed:
        print(f"    {failed} SIPp calls failed")
    return used * 1000 / (calls * wall)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(describe())
    print(f"method: see the module docstring; {args.calls} calls x {args.seconds:.0f} s, echo")
    await Testbed().start()
    measured: dict[str, list[float]] = {name: [] for name in TRANSPORTS}
    for _ in range(args.rounds):
        for name, media in TRANSPORTS.items():
            measured[name].append(await one_round(media, args.calls, args.seconds))
    for name, values in measured.items():
        shown = ", ".join(f"{v:.1f}" for v in values)
        print(
            f"  {name:17s} {statistics.median(values):5.1f} ms CPU per call-second"
            f" ({shown}; {statistics.median(values) / 50 * 1000:.0f} us per 20 ms, in and out)"
        )


if __name__ == "__main__":
    asyncio.run(main())
