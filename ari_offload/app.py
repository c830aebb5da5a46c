"""The whole application: store, speech models, ARI service with flows, REST API.

App.start(settings) -> store open -> models loaded and warmed -> ARI connected
                    -> REST API listening; App.stop() undoes it in reverse.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime

import aiohttp
from aiohttp import web

from ari_offload.agent.client import WebhookClient
from ari_offload.agent.egress import own_endpoints, webhook_session
from ari_offload.agent.event_sender import EventSender
from ari_offload.api.app import make_api_app
from ari_offload.api.errors import RedactingAccessLogger
from ari_offload.api.forward import Forwarder
from ari_offload.ari.call import ActiveCall, FlowRunner
from ari_offload.cluster import Heartbeat, identity, node_id_of
from ari_offload.config import Settings, check_api_settings, check_cluster_settings
from ari_offload.errors import QuotaExceeded, StoreError
from ari_offload.flows.builtin import BUILTIN_FLOWS
from ari_offload.flows.dispatch import FlowDispatcher
from ari_offload.flows.executor import AgentLookup, FlowContext, MessageLookup, run_actions
from ari_offload.flows.speak import speak
from ari_offload.observe.call_events import CallEvents, CallObservers, ConversationObservers
from ari_offload.observe.event_stream import EventHub
from ari_offload.observe.live_events import LiveEvents
from ari_offload.observe.metrics import Metrics
from ari_offload.observe.recorder import CallRecorder
from ari_offload.observe.recording import Recordings, recordings_dir
from ari_offload.policy import Policy
from ari_offload.policy_file import load_policy
from ari_offload.quotas import check_quotas, max_duration_s, tenant_rules
from ari_offload.retention import run_retention
from ari_offload.service import AriService
from ari_offload.speech.models import SpeechModels, load_speech_models
from ari_offload.store._db import utcnow
from ari_offload.store.records import CallStatus
from ari_offload.store.store import Store
from ari_offload.telephony import AriTelephony
from ari_offload.voice.conversation import AgentBinding

log = logging.getLogger("ari_offload")

UNKNOWN_FLOW_TEXT = "Sorry, this number is not in service. Goodbye."
OVER_QUOTA_TEXT = "Sorry, all our lines are busy right now. Please call again later. Goodbye."
RECONCILE_GRACE_S = 2.0  # after connecting, time for leftover calls to be adopted
# The end of a call an earlier run left open whose caller was gone when we came back.
LOST_CALL_REASON = "lost: ari-offload stopped mid-call; the caller had hung up before it was back"


@dataclass
class App:
    settings: Settings
    store: Store
    models: SpeechModels
    metrics: Metrics
    service: AriService
    api_runner: web.AppRunner
    http: aiohttp.ClientSession
    own_models: bool
    policy: Policy
    recorder: CallRecorder
    telephony: AriTelephony
    events: EventSender
    stream: EventHub  # the tenants' live events, GET /v1.0/events
    recordings: Recordings
    _lost_task: asyncio.Task[None] | None = None
    _lost_timer: asyncio.TimerHandle | None = None
    _retention_task: asyncio.Task[None] | None = None
    # In a cluster: this node's id, its session to the other nodes, its heartbeat.
    node_id: str | None = None
    node_http: aiohttp.ClientSession | None = None
    _heartbeat_task: asyncio.Task[None] | None = None
    # When this run began: calls recorded since are its own, never an earlier run's leftovers.
    started_at: datetime = field(default_factory=utcnow)

    @property
    def api_url(self) -> str:
        host, port = self.api_runner.addresses[0][:2]
        return f"http://{host}:{port}"

    @classmethod
    async def start(cls, settings: Settings, models: SpeechModels | None = None) -> App:
        started, started_at = time.monotonic(), utcnow()
        check_api_settings(settings.api)  # before anything starts: nothing to undo
        check_cluster_settings(settings)
        node_id = node_id_of(settings)
        policy = load_policy(settings.policy.file)
        for line in policy.describe():
            log.info("%s", line)
        store = await Store.open(settings.store)
        own_models = models is None
        if models is None:
            log.info("loading speech models (%s, %s)...", settings.speech.stt_engine,
                     settings.speech.tts_engine)  # fmt: skip
            models = await asyncio.to_thread(load_speech_models, settings.speech)
        metrics = Metrics()
        metrics.watch_speech_queue(models.scheduler.waiting)
        metrics.concurrent_calls_limit.set(policy.quotas.concurrent_calls or 0)
        recorder = CallRecorder(store, metrics, node_id)
        # The tenants' event stream (GET /v1.0/events), told after the recorder: whose call.
        hub = EventHub(settings.api, metrics)
        live = LiveEvents(hub, recorder.customer_of, store)
        # Webhooks only where the policy allows, never to our own ARI or API (agent.egress).
        refused = own_endpoints(settings.ari.url, settings.api.host, settings.api.port)
        http = webhook_session(policy.egress, refused)
        webhook = WebhookClient(
            http,
            settings.agent.webhook_timeout_s,
            stream_timeout_s=settings.agent.webhook_stream_timeout_s,
        )
        # Call events: the same guarded session and signing as webhooks, in the background.
        poster = WebhookClient(http, settings.events.timeout_s, noun="events URL")
        events = EventSender(poster.post_event, settings.events, metrics.event_delivery)
        call_events = CallEvents(events)
        recorded_in = recordings_dir(settings.recording, settings.store.data_dir)
        recordings = Recordings(settings.recording, recorded_in, store.calls)
        flow_ctx = FlowContext(
            settings, models, webhook, _agents(store),
            ConversationObservers(recorder, call_events, live), policy, call_events.agent_joined,
            recorder.answered_by,
            find_message=_messages(store),
            start_recording=recordings.start,
        )  # fmt: skip
        flows = _StoreFlows(store, flow_ctx, policy)
        dispatcher = FlowDispatcher(BUILTIN_FLOWS, flows.resolve, flows.unknown)
        service = AriService(
            settings, dispatcher, CallObservers(recorder, call_events, live),
            policy.quotas.max_call_duration_s, policy.quotas.concurrent_calls,
        )  # fmt: skip
        await service.start()
        telephony = AriTelephony(service.controller, models.tts, flow_ctx.observer)
        node_http, forwarder = None, None
        if node_id is not None:  # the other nodes are ours: not through the egress guard
            node_http = aiohttp.ClientSession()
            forwarder = Forwarder(
                node_id, settings.cluster.secret, node_http, metrics=metrics,
                timeout_s=settings.cluster.forward_timeout_s,
                node_timeout_s=settings.cluster.node_timeout_s, recordings=recorded_in,
            )  # fmt: skip
        api = make_api_app(
            settings.api, store, telephony, metrics, policy, refused, models, hub, forwarder
        )
        runner = web.AppRunner(api, access_log_class=RedactingAccessLogger)
        await runner.setup()
        await web.TCPSite(runner, settings.api.host, settings.api.port).start()
        refused.update((str(a[0]), int(a[1])) for a in runner.addresses)  # port 0: now known
        app = cls(
            settings, store, models, metrics, service, runner, http, own_models, policy, recorder,
            telephony, events, hub, recordings, node_id=node_id, node_http=node_http,
            started_at=started_at,
        )  # fmt: skip
        if node_id is not None:
            heartbeat = Heartbeat(
                store, identity(settings, int(runner.addresses[0][1])), settings,
                load=lambda: len(service.controller.calls),
                ari_up=service.stream.connected, metrics=metrics,
            )  # fmt: skip
            app._heartbeat_task = asyncio.create_task(heartbeat.run(), name="cluster-heartbeat")
        events.start()  # events of calls that came in meanwhile were queued
        app._retention_task = asyncio.create_task(
            run_retention(
                store.calls, settings.store.retention_days,
                # In a cluster another node may delete a call recorded here: sweep its file.
                recordings=recorded_in if node_id is not None else None,
            ),
            name="call-retention",
        )  # fmt: skip
        # What start built (models, engines, modules) lives as long as the process: out of the
        # cyclic GC's reach, a full collection during calls walks only what calls create (a
        # gen-2 pass over all of it stalled the event loop for 0.15 s and more, mid-call).
        gc.freeze()
        log.info("REST API on %s/v1.0 (ready in %.1f s)", app.api_url, time.monotonic() - started)
        app._lost_timer = asyncio.get_running_loop().call_later(
            RECONCILE_GRACE_S, app._spawn_close_lost_calls
        )
        return app

    def _spawn_close_lost_calls(self) -> None:
        self._lost_task = asyncio.ensure_future(self.close_lost_calls())

    async def close_lost_calls(self) -> None:
        """Calls an earlier run left 'ringing' or 'active' that no controller holds now."""
        if not self.service.stream.connected.is_set():
            return  # Asterisk is away: its calls may come back; the next start checks again
        # In a cluster only this node's: the others' calls are theirs to reconcile. Calls of
        # this run are not: an outbound call placed since is ringing, not lost.
        for call in await self.store.calls.list_unfinished(self.node_id):
            earlier = call.started_at < self.started_at
            if earlier and self.service.controller.find(call.id) is None:
                log.info("call %s: marking ended (%s)", call.id, LOST_CALL_REASON)
                reason = LOST_CALL_REASON
                await self.store.calls.set_status(call.id, CallStatus.ENDED, reason=reason)

    async def stop(self) -> None:
        # Nothing of ours may be left pending when the loop closes.
        if self._lost_timer is not None:
            self._lost_timer.cancel()
        for task in (self._lost_task, self._retention_task, self._heartbeat_task):
            if task is not None and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self.api_runner.cleanup()
        if self.node_http is not None:
            await self.node_http.close()
        await self.telephony.close()  # API texts still being spoken
        await self.service.stop()
        await self.recordings.close()  # the calls' media closed: their recordings end
        await self.recorder.close()  # after the calls' ends: only writers of unfinished ones
        if self.node_id is not None:
            await _leave_cluster(self.store, self.node_id)
        await self.events.close()  # the calls' ends told (a short grace), before the session
        await self.http.close()
        await self.store.close()
        if self.own_models:
            self.models.close()


class _StoreFlows:
    """Flows defined through the API: the number the operator assigned, or flow=ID.

    Every call runs inside its tenant's quotas; one over them hears an apology and ends.
    """

    def __init__(self, store: Store, ctx: FlowContext, policy: Policy) -> None:
        self._store = store
        self._ctx = ctx
        self._policy = policy

    async def resolve(self, call: ActiveCall) -> FlowRunner | None:
        flow = await self._store.flows.for_call(flow_id=call.flow_ref, number=call.dialled_number)
        if flow is None:
            return None
        actions = list(flow.actions)
        ctx, store, policy = self._ctx, self._store, self._policy

        async def run(call: ActiveCall) -> None:
            rules = await tenant_rules(store, policy, flow.customer_id)
            try:
                if call.direction == "in":  # outbound calls were admitted when placed
                    await check_quotas(
                        store, policy, rules, flow.customer_id, call.call_id, utcnow()
                    )
            except QuotaExceeded as exc:
                log.warning("call %s: refused: %s", call.call_id, exc)
                call.hangup_reason = f"quota: {exc.rule}"
                await speak(call.media, ctx.models.tts, OVER_QUOTA_TEXT)
                return
            await _within(call, max_duration_s(policy, rules), run_actions(call, actions, ctx))

        return run

    async def unknown(self, call: ActiveCall) -> None:
        """Never leave a caller in silence: apologise, then the call ends."""
        await speak(call.media, self._ctx.models.tts, UNKNOWN_FLOW_TEXT)


async def _within(call: ActiveCall, limit_s: int | None, flow: Awaitable[None]) -> None:
    """Run the flow; past the tenant's call-length limit, hang up (reason "max-duration")."""
    try:
        async with asyncio.timeout(limit_s) as deadline:
            await flow
    except TimeoutError:
        if not deadline.expired():
            raise  # a timeout of the flow's own, not the limit
        log.info("call %s: reached the tenant's max duration of %s s; hanging up", call.call_id,
                 limit_s)  # fmt: skip
        call.hangup_reason = "max-duration"
        await call.hangup()


async def _leave_cluster(store: Store, node_id: str) -> None:
    """Tell the other nodes at once (not after the timeout) that this node takes nothing."""
    try:
        await store.nodes.leave(node_id, utcnow())
    except StoreError as exc:
        log.warning("cluster: could not record leaving (%s); the others time it out", exc)


def _agents(store: Store) -> AgentLookup:
    async def find(agent_id: str) -> AgentBinding | None:
        agent = await store.agents.get(agent_id, customer_id=None)
        if agent is None:
            return None
        return AgentBinding(
            agent.id, agent.webhook, agent.secret or None, agent.voice, agent.language,
            agent.events_url, agent.speaking_rate, agent.llm,
        )  # fmt: skip

    return find


def _messages(store: Store) -> MessageLookup:
    async def find(call_id: str) -> str | None:
        call = await store.calls.get(call_id, customer_id=None)
        return None if call is None else call.message

    return find


async def run_app(settings: Settings) -> None:
    app = await App.start(settings)
    try:
        await asyncio.Event().wait()
    finally:
        await app.stop()
