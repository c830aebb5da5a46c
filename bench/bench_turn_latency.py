"""Turn latency on the wire: end of caller speech -> first reply audio at the caller.

    .venv/bin/python -m bench.bench_turn_latency [--rows 1,3,8,24s] [--rounds 2]
                                                 [--env KEY=VALUE ...]

Method: a real ``ari-offload serve`` process (whisper tiny.en int8, piper joe) on the test-bed
Asterisk 22; real SIPp callers; an instant webhook whose reply is the kind real agents send, a
long first sentence: "You said: <the caller's words>. How else can I help?". Each call says
four utterances whose starts are 8 s apart. One dumpcap captures every call's RTP at the
callers (read after the calls); a 20 ms packet is speech at >= -45 dBFS; a turn's latency is
the caller's last speech packet -> the first agent speech packet after it; a reply that does
not start before the caller's next utterance is a failed turn; one whose audio stops for
more than 0.7 s before the caller speaks again is a stalled reply (synthesis fell behind).

Rows: ``1`` (one call at a time), ``N`` (N calls whose callers stop talking in the same 20 ms),
``Ns`` (N calls whose starts are spread evenly over the 8 s cycle). Each row prints p50, p95,
max and failed turns on the wire, the app's own breakdown (endpoint + stt + webhook + tts =
total, p50 of each, per turn paired with the wire turn) with the mean and max difference of
the app's total from the wire figure, and the app's CPU-seconds per turn (from /proc, user +
system, over the row). The app runs alone on the machine's cores apart from SIPp, dumpcap and
this process (which only waits while calls run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from ari_offload.sdk.client import Client
from bench.machine import describe
from testbed.asterisk import Testbed
from testbed.audio import speech_file
from testbed.dialogue import Say, Silence, Step, script_audio
from testbed.serve import ServeProcess, soak_policy
from testbed.sipp import SippCall
from testbed.wire import AppTurn, WireCapture, WireTurn, app_turns, pair, wire_turns

UTTERANCES = [
    "I need to reset my password",
    "What are your opening hours?",
    "Can you help me with my account?",
    "I would like to change my address",
]
CYCLE_S = 8.0
LEAD_S = 1.0
TAIL_S = 2.0
PARTS = ("endpoint_ms", "stt_ms", "webhook_ms", "tts_first_audio_ms")
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def realistic_reply(text: str) -> str:
    """What an LLM agent says: a long first sentence, then a question."""
    return f"You said: {text.rstrip('.?!')}. How else can I help?"


def script() -> list[Step]:
    steps: list[Step] = [Silence(LEAD_S)]
    for text in UTTERANCES:
        spoken_s = speech_file(text, lead_silence_s=0.0).stat().st_size / 8000
        steps += [Say(text), Silence(CYCLE_S - spoken_s)]
    return steps


@contextlib.asynccontextmanager
async def echo_agent() -> AsyncIterator[str]:
    async def hook(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"text": realistic_reply(str(body.get("text", "")))})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    finally:
        await runner.cleanup()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime + stime


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def one_row(
    service: str, audio: Path, calls: int, spread: bool, rounds: int
) -> tuple[list[WireTurn], int]:
    """``rounds`` times: ``calls`` calls at once (or spread over the cycle)."""
    turns: list[WireTurn] = []
    failed_calls = 0
    hangup_after = len(script_audio(script())) / 8000 + TAIL_S
    for _ in range(rounds):
        capture = WireCapture()
        await capture.start()
        placed = [SippCall(service, audio, hangup_after) for _ in range(calls)]

        async def run(index: int, call: SippCall) -> bool:
            await asyncio.sleep(index * CYCLE_S / calls if spread else 0.0)
            return (await call.run()).ok

        results = await asyncio.gather(*(run(i, c) for i, c in enumerate(placed)))
        failed_calls += results.count(False)
        packets = await capture.stop()
        turns += wire_turns(packets, [c.media_port for c in placed])
    return turns, failed_calls


def report(label: str, wire: list[WireTurn], app: list[AppTurn], cpu_s: float) -> None:
    measured = [t.latency_s * 1000 for t in wire if t.latency_s is not None]
    failed = sum(t.latency_s is None for t in wire)
    stalled = sum(t.stalled for t in wire)
    print(
        f"\n{label}: {len(wire)} turns, {failed} failed, {stalled} replies stalled (a gap > 0.7 s)"
    )
    if not measured:
        return
    print(
        f"  wire   p50 {percentile(measured, 0.5):5.0f} ms  p95 {percentile(measured, 0.95):5.0f}"
        f" ms  max {max(measured):5.0f} ms"
    )
    pairs = pair(wire, app)
    if pairs:
        p50 = {
            name: statistics.median(a.parts[name] or 0.0 for _, a in pairs)
            for name in (*PARTS, "total_ms")
        }
        diffs = [(a.parts["total_ms"] or 0.0) - (w.latency_s or 0.0) * 1000 for w, a in pairs]
        app_totals = [a.parts["total_ms"] or 0.0 for _, a in pairs]
        print(
            f"  app    p50 {percentile(app_totals, 0.5):5.0f} ms  p95 "
            f"{percentile(app_totals, 0.95):5.0f} ms   breakdown (p50 each): "
            + " + ".join(f"{n.removesuffix('_ms')} {p50[n]:.0f}" for n in PARTS)
        )
        print(
            f"  app - wire per turn ({len(pairs)} paired): mean {statistics.mean(diffs):+.0f} ms,"
            f" max |diff| {max(abs(d) for d in diffs):.0f} ms"
        )
    turns = max(1, len(measured))
    print(f"  app CPU {cpu_s:.1f} s over the row: {cpu_s / turns:.2f} CPU-s per turn")


def parse_rows(text: str) -> list[tuple[str, int, bool]]:
    rows = []
    for item in text.split(","):
        spread = item.endswith("s")
        calls = int(item.removesuffix("s"))
        if calls == 1:
            label = "1 call"
        elif spread:
            label = f"{calls} calls spread over the {CYCLE_S:.0f} s cycle"
        else:
            label = f"{calls} calls ending together"
        rows.append((label, calls, spread))
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1,3,8,24s")
    parser.add_argument("--rounds", type=int, default=2, help="repetitions of each row")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for serve")
    args = parser.parse_args()
    extra_env = dict(item.split("=", 1) for item in args.env)
    print(describe(("faster-whisper", "ctranslate2", "piper-tts")))
    print("method: see the module docstring; settings:", extra_env or "defaults")
    await Testbed().start()
    workdir = Path(tempfile.mkdtemp(prefix="aoff-latency-"))
    policy = soak_policy(workdir, tenant_concurrent=64, per_minute=1000)
    serve = ServeProcess(workdir, _free_port(), policy, extra_env)
    audio = workdir / "caller.ulaw"
    audio.write_bytes(script_audio(script()))
    started = time.monotonic()
    async with echo_agent() as hook:
        await serve.start()
        client = await Client.signup(serve.api_url, "bench", "bench-password-1")
        try:
            agent = await client.agents.create(name="echo", webhook=hook)
            flow = await client.flows.create("latency", [{"type": "ai_talk", "agent_id": agent.id}])
            for label, calls, spread in parse_rows(args.rows):
                since = datetime.now(UTC)
                cpu_before = cpu_seconds(serve.pid)
                rounds = args.rounds if calls < 24 else 1
                wire, failed_calls = await one_row(f"8{flow.id}", audio, calls, spread, rounds)
                cpu = cpu_seconds(serve.pid) - cpu_before
                await asyncio.sleep(1.0)  # the last records
                report(label, wire, await app_turns(client, since), cpu)
                if failed_calls:
                    print(f"  {failed_calls} SIPp calls failed")
        finally:
            await client.close()
            await serve.stop()
    errors = serve.lines_with(" ERROR ")
    print(
        f"\nERROR lines in the app log: {len(errors)}; wall time {time.monotonic() - started:.0f} s"
    )


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


if __name__ == "__main__":
    asyncio.run(main())
