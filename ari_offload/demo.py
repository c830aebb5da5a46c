"""``python -m ari_offload.demo``: a real call, printed as a dialogue.

A SIPp caller dials the test-bed Asterisk; ari-offload answers, transcribes, asks the built-in
sample agent and speaks its replies. The caller's lines are espeak-ng speech; what is printed
is what the app understood and said, with each turn's latency measured on the wire.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time

from ari_offload.media.g711 import ULAW
from ari_offload.testbed.dialogue import Say, Silence, Step, run_dialogue
from ari_offload.testbed.stack import TALK_SERVICE, local_stack
from ari_offload.turns import TranscriptEntry, TurnTiming

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


def print_dialogue(
    entries: list[TranscriptEntry], timings: list[TurnTiming], wire: list[float | None]
) -> None:
    turn = 0
    for entry in entries:
        if entry.role == "caller":
            print(f"  caller said: {entry.text}")
            continue
        note = ""
        if turn and turn <= len(timings):
            t = timings[turn - 1]
            on_wire = wire[turn - 1] if turn - 1 < len(wire) else None
            measured = f"{on_wire * 1000:.0f} ms on the wire" if on_wire else "not measured"
            note = (
                f"\n      (reply {measured}; app: endpoint {t.endpoint_ms:.0f} + stt "
                f"{t.stt_ms:.0f} + webhook {t.webhook_ms:.0f} + tts {t.tts_first_audio_ms:.0f} ms)"
            )
        print(f"  agent said:  {entry.text}{note}")
        turn += 1


async def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    print("ari-offload demo: starting the test-bed Asterisk, the sample agent and ari-offload...")
    started = time.monotonic()
    async with local_stack(welcome=WELCOME) as stack:
        print(f"ready in {time.monotonic() - started:.1f} s; SIPp calls extension {TALK_SERVICE}\n")
        # The caller speaks with piper's voice: clearer than espeak-ng on a phone line.
        synth = stack.models.synthesizer

        def caller_voice(text: str) -> bytes:
            return ULAW.encode(synth.synthesize_sentence(text))

        result = await run_dialogue(TALK_SERVICE, caller_script(), tail_s=3.0, voice=caller_voice)
        await asyncio.sleep(0.5)  # the hangup's bookkeeping
        if len(stack.calls.entries) != 1:
            print(f"demo failed: expected one call, got {len(stack.calls.entries)}")
            print(result.sipp.output[-2000:], result.sipp.errors[-2000:])
            return 1
        (call_id,) = stack.calls.entries
        print(f"call {call_id}:")
        print_dialogue(
            stack.calls.entries[call_id], stack.calls.timings.get(call_id, []), result.latencies()
        )
        print(
            f"\nthe sample webhook received {len(stack.webhook_requests)} requests: "
            + ", ".join(repr(r.text) for r in stack.webhook_requests)
        )
    return 0 if result.sipp.ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
