"""ai_talk: speak the welcome message, then converse with the agent's webhook until it hangs up
or asks for a transfer (run here, as the flow's transfer action would)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ari_offload.flows.actions.base import MAX_ID_LENGTH, MAX_TEXT_LENGTH, Action, ActionKind
from ari_offload.flows.actions.transfer import Transfer, run_transfer
from ari_offload.schema import Str

if TYPE_CHECKING:
    from ari_offload.ari.call import ActiveCall
    from ari_offload.flows.executor import FlowContext

log = logging.getLogger("ari_offload.flows")

AGENT_MISSING_TEXT = "Sorry, this line is not available right now. Goodbye."


@dataclass(frozen=True)
class AiTalk(Action):
    """Speak the welcome message, then converse with the agent's webhook until hangup."""

    agent_id: str
    welcome_message: str | None = None
    type: ClassVar[str] = "ai_talk"


async def run_ai_talk(call: ActiveCall, action: AiTalk, ctx: FlowContext) -> bool:
    """Converse; False when the call should end here (the agent hung up or is missing)."""
    agent = await ctx.find_agent(action.agent_id)
    if agent is None:
        log.warning("call %s: agent %s not found; apologising", call.call_id, action.agent_id)
        await ctx.speak(call, AGENT_MISSING_TEXT)
        return False
    conversation = ctx.conversation(call, agent)
    call.conversation = conversation
    try:
        await conversation.run(action.welcome_message)
    finally:
        call.conversation = None
    if conversation.handoff is not None:  # the agent asked for a transfer: policy decides
        return await run_transfer(call, Transfer(conversation.handoff.target), ctx)
    return not conversation.finished


KIND = ActionKind(
    AiTalk,
    "Converse with an agent's webhook until the call ends.",
    run_ai_talk,
    {
        "agent_id": Str(MAX_ID_LENGTH, 1, description="an agent's id"),
        "welcome_message": Str(
            MAX_TEXT_LENGTH, nullable=True, description="spoken when the call starts"
        ),
    },
    required=("agent_id",),
    agent_fields=("agent_id",),
)
