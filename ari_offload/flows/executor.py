"""Run a flow's actions, in order, on one call: each through its registered handler.

The API may cut in (``FlowRun``, the call's ``flow`` while it runs): a transfer it asks for
stops the action in progress and runs the flow's own transfer action in its place.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ari_offload.agent.client import WebhookClient
from ari_offload.ari.call import ActiveCall
from ari_offload.audio import Pcm
from ari_offload.config import Settings
from ari_offload.flows.actions import KINDS, Action
from ari_offload.flows.actions.transfer import Transfer, run_transfer
from ari_offload.flows.speak import Prepared, speak
from ari_offload.policy import Policy
from ari_offload.speech.models import SpeechModels
from ari_offload.tasks import first_of
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
# The message a call was placed with (POST /calls "message"), by call id; None: none.
MessageLookup = Callable[[str], Awaitable[str | None]]
# Starts recording a call (observe.recording); returns once it records or has said why not.
StartRecording = Callable[[ActiveCall], Awaitable[None]]


async def no_message(call_id: str) -> str | None:
    return None


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
    find_message: MessageLookup = no_message  # say_message's text (the store's call record)
    start_recording: StartRecording | None = None  # None: this server records no calls

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


class FlowRun:
    """The flow running on one call, as the API sees it (``ActiveCall.flow``)."""

    def __init__(self, call: ActiveCall) -> None:
        self._call = call
        self.cut_in: Transfer | None = None
        self.cut = asyncio.Event()

    def transfer(self, target: str) -> bool:
        # A call leaving is not cut: a transfer under way (the flow's, an agent's, or this
        # API's) may have its leg ringing or bridged already, a hangup may be on its way.
        call = self._call
        if self.cut_in is not None or call.state.startswith("transfer") or call.hangup_reason:
            return False
        self.cut_in = Transfer(target)
        self.cut.set()
        return True


async def run_actions(call: ActiveCall, actions: list[Action], ctx: FlowContext) -> None:
    """Run until the actions are done or one of them ends the call (hangup, transfer); a
    transfer the API asks for meanwhile stops the action in progress and ends the flow."""
    run = call.flow = FlowRun(call)
    try:
        for index, action in enumerate(actions):
            if call.ended.is_set() or run.cut_in is not None:
                break
            log.debug("call %s: action %d %s", call.call_id, index, action.type)
            step = asyncio.ensure_future(KINDS[action.type].handler(call, action, ctx))
            await first_of(step, run.cut.wait())
            if not step.cancelled() and not step.result():
                return
        if run.cut_in is not None and not call.ended.is_set():
            log.info("call %s: the API cut in: transfer to %s", call.call_id, run.cut_in.target)
            call.media.flush()  # what the stopped action had queued is not said
            await run_transfer(call, run.cut_in, ctx)  # under the policy, as a flow's own
    finally:
        call.flow = None
