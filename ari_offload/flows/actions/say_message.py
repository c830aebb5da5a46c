"""say_message: speak the message the call was placed with (``POST /v1.0/calls`` "message").

One flow then says a different message on every call: the message belongs to the call
(stored with its record, deleted with it), not to the flow, so a call still ringing says its
own message whatever calls are placed after it. It goes to the speech synthesizer only,
never to Asterisk; its length is bounded as a talk action's text is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ari_offload.flows.actions.base import MAX_TEXT_LENGTH, Action, ActionKind
from ari_offload.schema import Str

if TYPE_CHECKING:
    from ari_offload.ari.call import ActiveCall
    from ari_offload.flows.executor import FlowContext

# The "message" of POST /v1.0/calls.
CALL_MESSAGE = Str(
    MAX_TEXT_LENGTH, 1, nullable=True,
    description="what the flow's say_message action says on this call (the flow needs one)",
)  # fmt: skip


@dataclass(frozen=True)
class SayMessage(Action):
    """Speak the call's message; ``fallback`` (or nothing) when it was placed without one."""

    fallback: str | None = None
    type: ClassVar[str] = "say_message"


async def run_say_message(call: ActiveCall, action: SayMessage, ctx: FlowContext) -> bool:
    text = await ctx.find_message(call.call_id) or action.fallback
    if text:
        call.set_state("talk")
        await ctx.speak(call, text)
    return True


_FALLBACK = Str(
    MAX_TEXT_LENGTH, 1, nullable=True,
    description="said when the call has no message (inbound calls have none)",
)  # fmt: skip

KIND = ActionKind(
    SayMessage,
    'Speak the message the call was placed with (POST /calls "message"), else fallback.',
    run_say_message,
    {"fallback": _FALLBACK},
)
