"""``python -m testbed.demo``: the whole product on one real call, printed as a dialogue.

It does what a new user does: start ari-offload (store, models, ARI, REST API), create an access
key, an agent (the built-in sample webhook) and a flow through the SDK, then a SIPp caller dials
the flow on the test-bed Asterisk (``8<flow name>``). The dialogue and each turn's latency are
read back from the API; the latency is also measured on the wire at the caller.
"""

from __future__ import annotations

import asyncio
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


async def main() -> int:
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
    print("\n[demo] the test-bed Asterisk is still up for you: scripts/testbed stop ends it")
    return 0 if result.sipp.ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
