"""One call's ARI plumbing: set up (answer, bridge, externalMedia, variables) and tear down.

Everything a call creates in Asterisk is named from its call id, so a restarted controller can
recognise (and clean up) what an earlier run left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from ari_offload.ari.events import Channel
from ari_offload.ari.keys import KeyMerge
from ari_offload.ari.rest import AriRest
from ari_offload.errors import AriError, AriHttpError, AriNotFound
from ari_offload.media.port import MediaLink, MediaPort
from ari_offload.tasks import cancel_and_wait, first_of

log = logging.getLogger("ari_offload.ari")

MEDIA_CHANNEL_PREFIX = "aoff-media-"
BRIDGE_PREFIX = "aoff-bridge-"
TRANSFER_CHANNEL_PREFIX = "aoff-xfer-"  # the far leg of a transfer to an endpoint
TRANSFER_RING_TIMEOUT_S = 30

MEDIA_STASIS_TIMEOUT_S = 5.0
# An adopted call re-creates its bridge under the same id right after the reconcile deleted the
# earlier run's: Asterisk frees the id only once that bridge's channels have left (409 until
# then, a few ms), so a 409 is tried again this often, this far apart.
BRIDGE_ID_RETRIES = 20
BRIDGE_ID_RETRY_S = 0.05

VAR_CALL_ID = "ARI_OFFLOAD_CALL_ID"
VAR_FLOW = "ARI_OFFLOAD_FLOW"
VAR_STATE = "ARI_OFFLOAD_STATE"
# How many times ari-offload has sent this call (or the call it came from) elsewhere. Set as
# "__" + VAR_DEPTH: Asterisk then copies it to every channel created from this one (Local/
# included), so a transfer that leads back into the app arrives with the count.
VAR_DEPTH = "ARI_OFFLOAD_DEPTH"
INHERITED_DEPTH = "__" + VAR_DEPTH
MAX_DEPTH = 1  # one hop (e.g. to another flow) is fine; a second one is refused as a loop


class LiveConversation(Protocol):
    """What the API may do to a call's running conversation (voice.conversation has it)."""

    def inject(self, text: str) -> None:
        """Speak ``text`` after the current reply; raises TalkQueueFull past the bound."""
        ...

    def digit(self, digit: str) -> None:
        """The caller pressed a key (Asterisk's ChannelDtmfReceived)."""
        ...


class LiveFlow(Protocol):
    """What the API may do to the flow running on a call (flows.executor has it)."""

    def transfer(self, target: str) -> bool:
        """Stop what the flow is doing and hand the caller to the policy's transfer target
        ``target``; False if the call is leaving already (a transfer under way)."""
        ...


@dataclass
class ActiveCall:
    """What a flow sees: one call, its media port and a few controls.

    The controller opens the media port (the transport's ``MediaLink``) before it builds the
    call, so ``media`` is always there; ``set_up_call`` connects it to Asterisk.
    """

    call_id: str
    channel: Channel
    args: dict[str, str]
    direction: str  # "in" or "out"
    rest: AriRest
    media: MediaPort
    state: str = "setup"
    started_at: float = field(default_factory=time.time)
    answered_at: float | None = None
    hangup_reason: str = ""
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    # set when our externalMedia channel's StasisStart arrives: only then can it be bridged
    media_in_stasis: asyncio.Event = field(default_factory=asyncio.Event)
    # the running ai_talk conversation, if any (the API's `talk` goes through it)
    conversation: LiveConversation | None = None
    flow: LiveFlow | None = None  # the flow's actions running (the API's `transfer` cuts in)
    transfer_leg: TransferLeg | None = None
    depth: int = 0  # VAR_DEPTH as the call arrived
    # Hung up with reason "max-duration" this long after the flow starts; None: no limit.
    # Set before the flow starts (e.g. in CallObserver.call_started).
    max_duration_s: float | None = None
    adopted: bool = False  # left in the app by an earlier run of ours, its flow restarted
    # Caller turns so far, an earlier run's included (the observer sets it for an adopted
    # call): a conversation numbers its turns on from here.
    turns: int = 0
    # set when the flow has stopped: the call's end is recorded after all the flow said
    flow_stopped: asyncio.Event = field(default_factory=asyncio.Event)
    # the caller's keys as ARI and the media transport report them: each press once
    keys: KeyMerge = field(default_factory=KeyMerge)
    _state_shown: str = ""
    _state_task: asyncio.Task[None] | None = None

    @property
    def channel_id(self) -> str:
        return self.channel.id

    @property
    def flow_ref(self) -> str:
        return self.args.get("flow", "")

    @property
    def dialled_number(self) -> str:
        """``number=`` from the dialplan: the operator maps it to a tenant's flow."""
        return self.args.get("number", "")

    @property
    def media_channel_id(self) -> str:
        return MEDIA_CHANNEL_PREFIX + self.call_id

    @property
    def bridge_id(self) -> str:
        return BRIDGE_PREFIX + self.call_id

    def set_state(self, state: str) -> None:
        """Record the state and show it to operators (`core show channel`).

        Never waits: the conversation calls this on its latency path, so the ARI request
        runs in the background and only the newest state is sent.
        """
        self.state = state
        if self.ended.is_set():
            return
        if self._state_task is None or self._state_task.done():
            self._state_task = asyncio.create_task(self._push_state())

    async def _push_state(self) -> None:
        while self._state_shown != self.state and not self.ended.is_set():
            state = self.state
            try:
                await self.rest.set_variable(self.channel_id, VAR_STATE, state)
            except Exception as exc:  # the channel may be gone: a label, never worth a crash
                log.debug("call %s: could not show state %s: %s", self.call_id, state, exc)
                return
            self._state_shown = state

    async def hangup(self, reason: str = "normal") -> None:
        """End the call from our side; the controller tears down on StasisEnd."""
        if self.ended.is_set():
            return
        self.hangup_reason = self.hangup_reason or "app"
        # AriNotFound: already gone, the caller hung up at the same moment
        with contextlib.suppress(AriNotFound):
            await self.rest.hangup(self.channel_id, reason)

    async def send_dtmf(self, digits: str) -> None:
        """Play DTMF ``digits`` to the caller's side of the call (an IVR, on outbound calls)."""
        if self.ended.is_set():
            return
        log.info("call %s: sending DTMF %s", self.call_id, digits)
        with contextlib.suppress(AriNotFound):  # hung up meanwhile
            await self.rest.send_dtmf(self.channel_id, digits)

    @property
    def transferred(self) -> bool:
        """The caller left our app on purpose: do not hang it up when the flow ends."""
        return self.hangup_reason.startswith("transfer:")

    async def transfer_to_dialplan(
        self, context: str, exten: str, priority: int = 1, *, label: str = ""
    ) -> None:
        """Send the caller back into the dialplan (leaves our Stasis app).

        ``label`` names the transfer in the call record (the policy's target name): where it
        leads in the dialplan is the operator's business, not the tenant's.
        """
        self.hangup_reason = f"transfer:{label or f'{context},{exten},{priority}'}"
        await self.rest.set_variable(self.channel_id, INHERITED_DEPTH, str(self.depth + 1))
        await self.rest.continue_in_dialplan(self.channel_id, context, exten, priority)

    @property
    def transfer_channel_id(self) -> str:
        return TRANSFER_CHANNEL_PREFIX + self.call_id

    async def transfer_to_endpoint(
        self, endpoint: str, ring_timeout_s: int = TRANSFER_RING_TIMEOUT_S
    ) -> bool:
        """Dial `endpoint`; once it answers it takes our media channel's place in the bridge.

        The caller stays in our app (and in `core show channels` as one call); either side
        hanging up ends both legs. False if the endpoint did not answer.
        """
        self.transfer_leg = TransferLeg()
        try:
            await self.rest.originate(
                self.transfer_channel_id, endpoint, "transfer",
                _presentable(self.channel.caller_number), ring_timeout_s,
                variables={INHERITED_DEPTH: str(self.depth + 1)},
            )  # fmt: skip
        except AriError as exc:
            log.warning("call %s: cannot dial %s: %s", self.call_id, endpoint, exc)
            return False
        leg = self.transfer_leg
        await first_of(leg.answered.wait(), leg.failed.wait(), asyncio.sleep(ring_timeout_s + 5))
        if not self.transfer_leg.answered.is_set():
            with contextlib.suppress(AriError):
                await self.rest.hangup(self.transfer_channel_id)
            return False
        await self.rest.add_to_bridge(self.bridge_id, [self.transfer_channel_id])
        with contextlib.suppress(AriNotFound):
            await self.rest.hangup(self.media_channel_id)  # we leave the conversation
        await self.media.close()
        self.set_state(f"transferred:{endpoint}")
        log.info("call %s: transferred to %s", self.call_id, endpoint)
        return True


# What runs on a call once it is set up (a flow); the controller starts one per call.
FlowRunner = Callable[[ActiveCall], Coroutine[Any, Any, None]]


@dataclass
class TransferLeg:
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    failed: asyncio.Event = field(default_factory=asyncio.Event)


def parse_depth(value: str) -> int:
    """VAR_DEPTH as read from a channel: empty is 0; anything but digits fails closed."""
    value = value.strip()
    if not value:
        return 0
    return int(value) if value.isdigit() else MAX_DEPTH + 1


async def set_up_call(call: ActiveCall, link: MediaLink) -> None:
    """Answer, bridge the caller with a fresh externalMedia channel, label the channel.

    ``link`` is the call's opened media transport (``call.media`` is its port).
    """
    rest = call.rest
    await rest.subscribe_channel(call.channel_id)
    if call.channel.state != "Up":
        await rest.answer(call.channel_id)
    call.answered_at = time.time()
    await _create_bridge(call)
    request = link.external_media
    media = await rest.external_media(
        call.media_channel_id, request.external_host, request.format,
        encapsulation=request.encapsulation, transport=request.transport,
        options=dict(request.options),
    )  # fmt: skip
    try:
        where = await link.connect(media.channelvars)
    except ValueError as exc:
        raise AriError(str(exc)) from None
    # The externalMedia POST returns before the channel has entered the app; adding it to the
    # bridge earlier fails with 422 "Channel not in Stasis application".
    await asyncio.wait_for(call.media_in_stasis.wait(), MEDIA_STASIS_TIMEOUT_S)
    await rest.add_to_bridge(call.bridge_id, [call.channel_id, call.media_channel_id])
    for name, value in ((VAR_CALL_ID, call.call_id), (VAR_FLOW, call.flow_ref)):
        await rest.set_variable(call.channel_id, name, value)
    log.info(
        "call %s: set up (channel %s, flow %r, %s)",
        call.call_id, call.channel.name, call.flow_ref, where,
    )  # fmt: skip


async def _create_bridge(call: ActiveCall) -> None:
    for attempt in range(BRIDGE_ID_RETRIES + 1):
        try:
            await call.rest.create_bridge(call.bridge_id, name=f"ari-offload {call.call_id}")
            return
        except AriHttpError as exc:
            if exc.status != 409 or attempt == BRIDGE_ID_RETRIES:
                raise
        log.debug("call %s: bridge id still taken (an earlier run's, going)", call.call_id)
        await asyncio.sleep(BRIDGE_ID_RETRY_S)


async def enforce_max_duration(call: ActiveCall, limit_s: float) -> None:
    """Hang up (reason "max-duration") if the call is still ours after ``limit_s``."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(call.ended.wait(), limit_s)
        return
    if call.transferred:
        return  # back in the dialplan: no longer ours to end
    log.info("call %s: reached its max duration of %g s; hanging up", call.call_id, limit_s)
    call.hangup_reason = "max-duration"
    with contextlib.suppress(AriError):
        await call.hangup()


async def tear_down_call(call: ActiveCall) -> None:
    """Delete what the call created. Idempotent; every step tolerates 'already gone'."""
    if call._state_task is not None:  # a label for operators: moot once the call is gone
        await cancel_and_wait(call._state_task)
    await call.media.close()
    steps: list[tuple[Callable[[str], Awaitable[None]], str]] = [
        (call.rest.hangup, call.media_channel_id)
    ]
    if call.transfer_leg is not None:
        steps.append((call.rest.hangup, call.transfer_channel_id))
    steps.append((call.rest.delete_bridge, call.bridge_id))
    for step, resource in steps:
        try:
            await step(resource)
        except AriNotFound:
            pass
        except AriHttpError as exc:
            if exc.status == 409:  # "not in Stasis application": Asterisk is already removing it
                log.debug("call %s: %s already going: %s", call.call_id, resource, exc)
            else:
                log.warning("call %s: cleanup of %s failed: %s", call.call_id, resource, exc)
        except AriError as exc:
            log.warning("call %s: cleanup of %s failed: %s", call.call_id, resource, exc)


_NUMBER = re.compile(r"\+?[0-9]{1,20}")


def _presentable(caller_number: str) -> str | None:
    """The caller's number, passed on to a transfer target only if it is a plain number.

    What a SIP caller puts in From reaches here unchecked; a display name or dial-string
    characters must not be presented on the operator's trunk.
    """
    return caller_number if _NUMBER.fullmatch(caller_number or "") else None
