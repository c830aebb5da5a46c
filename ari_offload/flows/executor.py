"""Run a flow's actions, in order, on one call."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ari_offload.agent.client import WebhookClient
from ari_offload.ari.call import ActiveCall
from ari_offload.config import Settings
from ari_offload.errors import PolicyRefused
from ari_offload.flows.model import Action, AiTalk, Hangup, Pause, Talk, Transfer
from ari_offload.flows.speak import speak
from ari_offload.policy import Policy
from ari_offload.speech.models import SpeechModels
from ari_offload.voice.conversation import AgentBinding, Conversation, ConversationObserver

log = logging.getLogger("ari_offload.flows")

TRANSFER_FAILED_TEXT = "Sorry, nobody is available to take your call. Goodbye."
AGENT_MISSING_TEXT = "Sorry, this line is not available right now. Goodbye."

AgentLookup = Callable[[str], Awaitable[AgentBinding | None]]


@dataclass
class FlowContext:
    """What actions need beyond the call itself; built once per process."""

    settings: Settings
    models: SpeechModels
    webhook: WebhookClient
    find_agent: AgentLookup
    observer: ConversationObserver | None = None
    policy: Policy = field(default_factory=Policy)  # where transfers may lead


async def run_actions(call: ActiveCall, actions: list[Action], ctx: FlowContext) -> None:
    """Run until the actions are done or one of them ends the call (hangup, transfer)."""
    media = call.media
    for index, action in enumerate(actions):
        if call.ended.is_set():
            return
        log.debug("call %s: action %d %s", call.call_id, index, action.type)
        if isinstance(action, AiTalk):
            if not await _ai_talk(call, action, ctx):
                return
        elif isinstance(action, Talk):
            call.set_state("talk")
            await speak(media, ctx.models.tts, action.text)
        elif isinstance(action, Pause):
            call.set_state("pause")
            await asyncio.sleep(action.seconds)
        elif isinstance(action, Hangup):
            await call.hangup()
            return
        elif isinstance(action, Transfer):
            await _transfer(call, action, ctx)
            return


async def _ai_talk(call: ActiveCall, action: AiTalk, ctx: FlowContext) -> bool:
    """Converse; False when the call should end here (the agent hung up or is missing)."""
    agent = await ctx.find_agent(action.agent_id)
    if agent is None:
        log.warning("call %s: agent %s not found; apologising", call.call_id, action.agent_id)
        await speak(call.media, ctx.models.tts, AGENT_MISSING_TEXT)
        return False
    conversation = Conversation(
        call, ctx.models, ctx.webhook, agent, ctx.settings.speech, ctx.settings.agent,
        ctx.observer,
    )  # fmt: skip
    call.conversation = conversation
    try:
        await conversation.run(action.welcome_message)
    finally:
        call.conversation = None
    return not conversation.finished


async def _transfer(call: ActiveCall, action: Transfer, ctx: FlowContext) -> None:
    call.set_state("transfer")
    try:
        # Checked again here: the flow was stored under a policy that may have changed since.
        target = ctx.policy.transfer_target(action.target)
    except PolicyRefused as exc:
        log.warning("call %s: transfer refused: %s", call.call_id, exc)
        await speak(call.media, ctx.models.tts, TRANSFER_FAILED_TEXT)
        return
    if target.endpoint is None:
        assert target.context is not None
        assert target.extension is not None
        await call.transfer_to_dialplan(
            target.context, target.extension, target.priority, label=target.name
        )
        return
    if await call.transfer_to_endpoint(target.endpoint):
        await call.ended.wait()  # the two legs talk until one hangs up
        return
    log.info("call %s: transfer target %r did not answer", call.call_id, target.name)
    await speak(call.media, ctx.models.tts, TRANSFER_FAILED_TEXT)
