"""``python -m testbed.demo``: the whole product on one real call, printed as a dialogue.

It does what a new user does: start ari-offload (store, models, ARI, REST API), create an access
key, an agent (the built-in sample webhook) and a flow through the SDK, then a SIPp caller dials
the flow on the test-bed Asterisk (``8<flow name>``). The dialogue and each turn's latency are
read back from the API; the latency is also measured on the wire at the caller.

It prints the console's address and the demo account's access key: open the console while
the call runs to watch it live. ``--stay`` keeps everything running after the call (Ctrl-C
ends it), to look around the console, place more calls or hang one up from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time

from ari_offload.media.g711 import ULAW
from ari_offload.sdk.client import Call
from ari_offload.turn_fields import TOTAL_PARTS
from testbed.dialogue import DialogueResult, Say, Silence, Step, run_dialogue
from testbed.stack import FLOW_NAME, local_product

WELCOME = "Hello! How can I help you today?"
CALLER_LINES = [
    "I need to reset my password.",
    "What are your opening hours?",
    "Thank you, goodbye.",
]


def caller_script() -> list[Step]:
    steps: list[Step] = [Silence(3.0)]  # the welcome message plays first
    for line in CALLER_LINES:
        steps += [Say(line), Silence(7.0)]
    return steps


def print_dialogue(call: Call, result: DialogueResult) -> None:
    print(f"call {call.id} ({call.direction}, {call.status}, {call.hangup_reason}):")
    wire = result.latencies()
    turns = {t.turn: t for t in call.turns}
    turn = 0
    for line in call.transcript:
        if line.role == "caller":
            print(f"  caller said: {line.text}")
            continue
        print(f"  agent said:  {line.text}")
        if turn in turns:
            t = turns[turn]
            on_wire = wire[turn - 1] if turn - 1 < len(wire) else None
            measured = f"{on_wire * 1000:.0f} ms on the wire" if on_wire else "not measured"
            parts = " + ".join(f"{f.short} {getattr(t, f.name) or 0:.0f}" for f in TOTAL_PARTS)
            print(f"      (reply {measured}; app: {parts} ms)")
        turn += 1


def console_lines(api_url: str, accesskey: str) -> list[str]:
    """How to open the console on the demo's server (the key is the demo account's own)."""
    return [
        f"[demo] console: {api_url}/console",
        f"[demo]   sign in with the demo account's access key: {accesskey}",
    ]


async def main(stay: bool = False) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.monotonic()
    print(
        "[demo] starting the test-bed Asterisk, the sample agent and ari-offload "
        "(store, whisper + piper, ARI, REST API)..."
    )
    async with local_product(WELCOME) as local:
        print(
            f"[demo] ready in {time.monotonic() - started:.1f} s; API on {local.app.api_url}/v1.0"
        )
        print(
            f"[demo] signed up, created agent {local.agent_id} ({local.webhook}) and flow "
            f"{FLOW_NAME!r} through the SDK"
        )
        for line in console_lines(local.app.api_url, local.client.accesskey):
            print(line)
        print(f"[demo] a SIPp caller dials {local.service} on the test-bed Asterisk...\n")
        synth = local.app.models.synthesizer  # the caller speaks with piper: clear on a phone

        def caller_voice(text: str) -> bytes:
            return ULAW.encode(synth.synthesize_sentence(text))

        result = await run_dialogue(local.service, caller_script(), tail_s=3.0, voice=caller_voice)
        await asyncio.sleep(0.5)  # the hangup's bookkeeping
        calls = await local.client.calls.list()
        if len(calls) != 1:
            print(f"[demo] FAILED: expected one call, the API lists {len(calls)}")
            print(result.sipp.output[-2000:], result.sipp.errors[-2000:])
            return 1
        print_dialogue(await local.client.calls.get(calls[0].id), result)
        if stay:
            print(f"\n[demo] still running: the console at {local.app.api_url}/console, calls to")
            print(f"[demo]   sip:{local.service}@127.0.0.1 reach the agent. Ctrl-C ends the demo.")
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()
    print("\n[demo] the test-bed Asterisk is still up for you: scripts/testbed stop ends it")
    return 0 if result.sipp.ok else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(asyncio.run(main(stay="--stay" in sys.argv[1:])))
