"""A whole local stack in one process, for the demo and the benchmarks.

Test-bed Asterisk + the built-in sample agent + the ari-offload controller with speech models,
wired so that dialling ``8talk`` converses with the sample agent.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from ari_offload.agent.client import WebhookClient
from ari_offload.agent.contract import WebhookRequest
from ari_offload.agent.sample import RECEIVED_KEY, make_sample_agent_app
from ari_offload.ari.call import ActiveCall
from ari_offload.config import Settings
from ari_offload.conversation import AgentBinding
from ari_offload.flows.builtin import BUILTIN_FLOWS
from ari_offload.flows.dispatch import FlowDispatcher
from ari_offload.flows.executor import FlowContext, run_actions
from ari_offload.flows.model import AiTalk
from ari_offload.service import AriService
from ari_offload.speech.models import SpeechModels, load_speech_models
from ari_offload.testbed.asterisk import TESTBED_ARI, Testbed
from ari_offload.turns import TranscriptEntry, TurnTiming

log = logging.getLogger("ari_offload.testbed")

TALK_SERVICE = "8talk"


@dataclass
class CallLog:
    """Transcript and turn timings of every call, as the controller recorded them."""

    entries: dict[str, list[TranscriptEntry]] = field(default_factory=dict)
    timings: dict[str, list[TurnTiming]] = field(default_factory=dict)

    async def transcript_added(self, call: ActiveCall, entry: TranscriptEntry) -> None:
        self.entries.setdefault(call.call_id, []).append(entry)

    async def turn_finished(self, call: ActiveCall, timing: TurnTiming) -> None:
        self.timings.setdefault(call.call_id, []).append(timing)


@dataclass
class LocalStack:
    service: AriService
    models: SpeechModels
    calls: CallLog
    webhook_requests: list[WebhookRequest]
    webhook_url: str


@contextlib.asynccontextmanager
async def local_stack(
    welcome: str | None = "Hello! How can I help you today?",
    models: SpeechModels | None = None,
) -> AsyncIterator[LocalStack]:
    settings = Settings(ari=TESTBED_ARI)
    await Testbed().start()
    own_models = models is None
    speech = models or load_speech_models(settings.speech)
    agent_app = make_sample_agent_app()
    runner = web.AppRunner(agent_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/ai-webhook"
    calls = CallLog()
    binding = AgentBinding("sample-agent", url)

    async def find_agent(agent_id: str) -> AgentBinding | None:
        return binding

    async with aiohttp.ClientSession() as session:
        webhook = WebhookClient(session, settings.agent.webhook_timeout_s)
        ctx = FlowContext(settings, speech, webhook, find_agent, calls)

        async def talk(call: ActiveCall) -> None:
            await run_actions(call, [AiTalk("sample-agent", welcome)], ctx)

        service = AriService(settings, FlowDispatcher({**BUILTIN_FLOWS, "talk": talk}))
        await service.start()
        try:
            await service.wait_connected()
            yield LocalStack(service, speech, calls, agent_app[RECEIVED_KEY], url)
        finally:
            await service.stop()
            await runner.cleanup()
            if own_models:
                speech.close()
