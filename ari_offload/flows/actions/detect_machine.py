"""detect_machine: on an outbound call, tell a person from an answering machine.

The flow's first action (it listens from the answer on). A person: the flow goes on with its
next action (``ai_talk`` and so on). A machine: wait for its beep (or its silence after the
greeting), leave ``voicemail_message``, hang up. Either way the call record's ``answered_by``
says which, and a system line in the transcript says why. On an inbound call it does
nothing: whoever called us is no answering machine; nor on a call the app adopted after a
restart (its flow begins again mid-call). The message is spoken in the server's default
voice. How it decides: voice/machine_detect.py.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ari_offload.flows.actions.base import MAX_TEXT_LENGTH, Action, ActionKind
from ari_offload.schema import Str

if TYPE_CHECKING:
    from ari_offload.ari.call import ActiveCall
    from ari_offload.flows.executor import FlowContext

log = logging.getLogger("ari_offload.flows")

VOICEMAIL_HANGUP_REASON = "voicemail"
ADOPTED_NOTE = (
    "no answering-machine detection: the call was already under way when the flow began again"
)
_CUES = {
    "beep": "after its beep",
    "silence": "after its greeting (no beep came)",
    "timeout": "at the end of the time we wait (it never went quiet)",
}


@dataclass(frozen=True)
class DetectMachine(Action):
    """On an outbound call: a person goes on with the flow, a machine gets the message."""

    voicemail_message: str
    type: ClassVar[str] = "detect_machine"


async def run_detect_machine(call: ActiveCall, action: DetectMachine, ctx: FlowContext) -> bool:
    """True (go on) for a person or an inbound call; False once the message is left."""
    if call.direction != "out":
        log.debug("call %s: inbound, no answering-machine detection", call.call_id)
        return True
    if call.adopted:  # answered long ago: what we would hear now is the conversation
        ctx.note(call, ADOPTED_NOTE)
        return True
    call.set_state("detecting-machine")
    answered = call.answered_at or time.time()
    async with ctx.machine_listener(call) as listener:
        verdict = await listener.verdict()
        if verdict is None:
            return False  # the far end hung up before we knew
        after_s = time.time() - answered
        ctx.answered_by(call, verdict.answered_by)
        ctx.note(
            call,
            f"answered by a {'person' if verdict.answered_by == 'human' else 'machine'}: "
            f"{verdict.cause} (decided {after_s:.1f} s after the answer)",
        )
        log.info("call %s: answered by a %s: %s, %.1f s after the answer",
                 call.call_id, verdict.answered_by, verdict.cause, after_s)  # fmt: skip
        if verdict.answered_by == "human":
            return True
        call.set_state("waiting-for-beep")
        async with ctx.prepare(call, action.voicemail_message) as message:
            cue = await listener.cue()
            if cue is None:
                return False
            await listener.close()  # nothing more to hear: the machine records us now
            ctx.note(call, f"leaving the voicemail message {_CUES[cue.cause]}")
            call.set_state("voicemail")
            await message.play()
    call.hangup_reason = VOICEMAIL_HANGUP_REASON
    return False


KIND = ActionKind(
    DetectMachine,
    "Outbound calls, as the first action: a person goes on with the flow; an answering "
    "machine hears voicemail_message once it records (after its tone), then the call ends.",
    run_detect_machine,
    {
        "voicemail_message": Str(
            MAX_TEXT_LENGTH, 1, description="left on an answering machine after its tone"
        )
    },
    required=("voicemail_message",),
    first_only=True,
)
