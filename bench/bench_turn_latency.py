"""Turn latency on the wire: end of caller speech -> first reply audio at the caller.

Method: real SIPp calls through the test-bed Asterisk to ari-offload (whisper tiny.en, piper,
the instant built-in sample agent). Each call plays a script of caller utterances separated by
silence; tshark captures the call's RTP on the caller's media port; a 20 ms packet is speech
if its level is >= -45 dBFS; a turn's latency is the time from the caller's last speech packet
of an utterance to the first agent speech packet after it. A reply that does not start before
the caller's next utterance counts as a miss. Prints p50/p95 at 1 and at N concurrent calls.

    .venv/bin/python -m bench.bench_turn_latency [--calls 4] [--rounds 3]

(as a module from the repo root, so the test bed beside ``tests/`` is importable).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import statistics
import time

from ari_offload.turn_fields import LATENCY_FIELDS
from testbed.dialogue import DialogueResult, Say, Silence, Step, run_dialogue
from testbed.stack import local_product

UTTERANCES = [
    "I need to reset my password",
    "What are your opening hours?",
    "Can you help me with my account?",
]


PARTS = tuple(f.name for f in LATENCY_FIELDS)
CALLER_PAUSE_S = 5.0
CYCLE_S = 6.5  # one utterance (~1.5 s) and the pause after it


def script() -> list[Step]:
    steps: list[Step] = [Silence(0.5)]
    for text in UTTERANCES:
        steps += [Say(text), Silence(CALLER_PAUSE_S)]
    return steps


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def delayed_dialogue(service: str, delay_s: float) -> DialogueResult:
    await asyncio.sleep(delay_s)
    return await run_dialogue(service, script())


async def measure(
    service: str, concurrency: int, rounds: int, stagger_s: float = 0.0
) -> tuple[list[float], int]:
    """`concurrency` calls at once, call i starting i * stagger_s after the first."""
    latencies: list[float] = []
    misses = 0
    for _ in range(rounds):
        results = await asyncio.gather(
            *(delayed_dialogue(service, i * stagger_s) for i in range(concurrency))
        )
        for result in results:
            for value in result.latencies():
                if value is None:
                    misses += 1
                else:
                    latencies.append(value)
    return latencies, misses


def report(label: str, latencies: list[float], misses: int) -> None:
    label = f"{label:<40}"
    if not latencies:
        print(f"{label}: no turns measured ({misses} missed)")
        return
    print(
        f"{label}: turns={len(latencies)} missed={misses} "
        f"p50={percentile(latencies, 0.5) * 1000:.0f} ms "
        f"p95={percentile(latencies, 0.95) * 1000:.0f} ms "
        f"mean={statistics.mean(latencies) * 1000:.0f} ms "
        f"max={max(latencies) * 1000:.0f} ms"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4, help="concurrent calls for the 2nd run")
    parser.add_argument("--rounds", type=int, default=3, help="calls per measurement slot")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} cpus, python {platform.python_version()}"
    )
    print(
        "method: SIPp -> Asterisk 22 -> ari-offload (tiny.en int8, piper joe-medium, "
        "sample webhook); latency from tshark capture at the caller, -45 dBFS speech gate"
    )
    async with local_product(welcome=None) as local:
        started = time.monotonic()
        lat1, miss1 = await measure(local.service, 1, args.rounds)
        report("1 call", lat1, miss1)
        # Real callers do not finish their sentences in the same instant: spread the calls
        # over one utterance cycle. The synchronized run is the worst case.
        stagger = CYCLE_S / args.calls
        rounds = max(1, args.rounds // 2)
        latn, missn = await measure(local.service, args.calls, rounds, stagger)
        report(f"{args.calls} calls, starts {stagger:.1f} s apart", latn, missn)
        lats, misss = await measure(local.service, args.calls, rounds)
        report(f"{args.calls} calls, synchronized (worst case)", lats, misss)
        await asyncio.sleep(0.5)  # the last hangups' bookkeeping
        calls = await local.client.calls.list(limit=200)
        turns = [t for c in calls for t in (await local.client.calls.get(c.id)).turns]
        if turns:
            means = ", ".join(
                f"{name}={statistics.mean(getattr(t, name) or 0 for t in turns):.0f}"
                for name in PARTS
            )
            print(f"app-side breakdown over {len(turns)} turns (mean ms): {means}")
        print(f"wall time {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    asyncio.run(main())
