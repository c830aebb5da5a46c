"""Run a flow's actions, in order, on one call: each through its registered handler."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ari_offload.agent.client import WebhookClient
from ari_offload.ari.call import ActiveCall
from ari_offload.audio import Pcm
from ari_offload.config import Settings
from ari_offload.flows.actions import KINDS, Action
from ari_offload.flows.speak import Prepared, speak
from ari_offload.policy import Policy
from ari_offload.speech.models import SpeechModels
from ari_offload.voice.call_book import ConversationObserver
from ari_offload.voice.conversation import AgentBinding, Conversation
from ari_offload.voice.machine import MachineListener
from ari_offload.voice.machine_detect import MachineDetector
from ari_offload.voice.turns import TranscriptEntry

log = logging.getLogger("ari_offload.flows")

AgentLookup = Callable[[str], Awaitable[AgentBinding | None]]
# Told when a call starts talking to an agent (observe.call_events: the agent's events).
AgentJoined = Callable[[ActiveCall, AgentBinding], None]
# Told who answered an outbound call, "human" or "machine" (observe: the call record).
AnsweredBy = Callable[[ActiveCall, str], None]


@dataclass
class FlowContext:
    """What actions need beyond the call itself; built once per process.

    Handlers reach speech and conversations only through it, so the action modules (which
    the API and the SDK import for the shapes) import no media, speech or call code.
    """

    settings: Settings
    models: SpeechModels
    webhook: WebhookClient
    find_agent: AgentLookup
    observer: ConversationObserver | None = None
    policy: Policy = field(default_factory=Policy)  # where transfers may lead
    agent_joined: AgentJoined | None = None
    on_answered_by: AnsweredBy | None = None

    async def speak(self, call: ActiveCall, text: str) -> None:
        """Say a fixed text into the call; return when all of it was sent."""
        tts = self.models.tts_for(None, None, call.media.codec.sample_rate)
        await speak(call.media, tts, text)

    def prepare(self, call: ActiveCall, text: str) -> Prepared:
        """``text`` synthesized from now on, to be played later (``Prepared.play``)."""
        tts = self.models.tts_for(None, None, call.media.codec.sample_rate)
        return Prepared(call.media, tts, text, call.call_id)

    def note(self, call: ActiveCall, text: str) -> None:
        """A system line in the call's transcript."""
        if self.observer is not None:
            self.observer.transcript_added(call, TranscriptEntry("system", text))

    def machine_listener(self, call: ActiveCall) -> MachineListener:
        """Answering-machine detection on the call's audio from now on."""
        stt = self.models.stt

        async def transcribe(pcm: Pcm) -> str:
            return (await stt.transcribe(pcm, owner=call.call_id)).text

        detector = MachineDetector(self.models.vad.new_classifier())
        return MachineListener(call.media, detector, transcribe=transcribe)

    def answered_by(self, call: ActiveCall, who: str) -> None:
        if self.on_answered_by is not None:
            self.on_answered_by(call, who)

    def conversation(self, call: ActiveCall, agent: AgentBinding) -> Conversation:
        """A conversation between the caller and the agent's webhook (not yet running)."""
        if self.agent_joined is not None:
            self.agent_joined(call, agent)
        return Conversation(
            call, self.models, self.webhook, agent, self.settings.speech, self.settings.agent,
            self.observer,
        )  # fmt: skip


async def run_actions(call: ActiveCall, actions: list[Action], ctx: FlowContext) -> None:
    """Run until the actions are done or one of them ends the call (hangup, transfer)."""
    for index, action in enumerate(actions):
        if call.ended.is_set():
            return
        log.debug("call %s: action %d %s", call.call_id, index, action.type)
        if not await KINDS[action.type].handler(call, action, ctx):
            return
