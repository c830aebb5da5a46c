"""The call controller: ARI events in, one task per call out; nothing leaks.

StasisStart -> set_up_call -> run the flow -> hang up when the flow returns
StasisEnd (either side hung up) -> stop the flow, tear_down_call, notify observers
(re)connect -> reconcile: forget calls Asterisk lost, delete our leftovers, adopt callers
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable

from ari_offload.ari.call import (
    BRIDGE_PREFIX,
    INHERITED_DEPTH,
    MAX_DEPTH,
    MEDIA_CHANNEL_PREFIX,
    TRANSFER_CHANNEL_PREFIX,
    VAR_CALL_ID,
    VAR_DEPTH,
    ActiveCall,
    FlowRunner,
    enforce_max_duration,
    parse_depth,
    set_up_call,
    tear_down_call,
)
from ari_offload.ari.events import (
    DTMF_KEYS,
    AriEvent,
    Channel,
    ChannelDestroyed,
    ChannelDtmfReceived,
    StasisEnd,
    StasisStart,
    parse_stasis_args,
    stasis_args_from_app_data,
)
from ari_offload.ari.observer import CallObserver, NullObserver
from ari_offload.ari.rest import AriRest, checked_id
from ari_offload.config import MediaSettings
from ari_offload.errors import AriBadId, AriError, AriNotFound
from ari_offload.media.port import MediaLink
from ari_offload.media.transports import transport_opener
from ari_offload.tasks import cancel_and_wait, first_of

log = logging.getLogger("ari_offload.ari")

_OUR_LEGS = (MEDIA_CHANNEL_PREFIX, TRANSFER_CHANNEL_PREFIX)  # channels we create, not callers
FLOW_STOP_TIMEOUT_S = 5.0  # a call's end waits this long for its cancelled flow to stop


class CallController:
    def __init__(
        self,
        rest: AriRest,
        media_settings: MediaSettings,
        run_flow: FlowRunner,
        observer: CallObserver | None = None,
        max_call_duration_s: float | None = None,
        max_calls: int | None = None,
    ) -> None:
        self.rest = rest
        self._max_calls = max_calls  # the server's ceiling (policy [quotas] concurrent_calls)
        self._media_settings = media_settings
        # Resolved now: an unknown transport name stops the start, not the first call.
        self._open_media = transport_opener(media_settings.transport, media_settings.codec)
        # The server-wide limit (policy [quotas]); every call, built-in flows included.
        self._max_call_duration_s = max_call_duration_s
        self._run_flow = run_flow
        self._observer: CallObserver = observer or NullObserver()
        self.calls: dict[str, ActiveCall] = {}  # by call id
        self._by_channel: dict[str, ActiveCall] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending_outbound: dict[str, dict[str, str]] = {}  # channel id -> args
        self._adopting: set[str] = set()

    # --- events ---------------------------------------------------------------------------

    def on_event(self, event: AriEvent) -> None:
        """Called by the EventStream for every event; never blocks, spawns per-call work."""
        if isinstance(event, StasisStart):
            if event.channel.id.startswith(MEDIA_CHANNEL_PREFIX):
                # our own externalMedia channel entering the app: its call may bridge it now
                owner = self.calls.get(event.channel.id.removeprefix(MEDIA_CHANNEL_PREFIX))
                if owner is not None:
                    owner.media_in_stasis.set()
                return
            if event.channel.id.startswith(TRANSFER_CHANNEL_PREFIX):
                owner = self._transfer_owner(event.channel.id)
                if owner is not None and owner.transfer_leg is not None:
                    owner.transfer_leg.answered.set()
                return
            if event.channel.id in self._by_channel or event.channel.id in self._adopting:
                return
            if event.channel.id in self._pending_outbound:
                # Our own originate: the call id is the channel id we chose for it.
                args = self._pending_outbound.pop(event.channel.id)
                self._spawn(self._handle_call(event.channel, args, "out", event.channel.id))
            else:
                args = caller_args(event.channel, parse_stasis_args(event.args))
                self._spawn(self._handle_call(event.channel, args, "in", None))
        elif isinstance(event, StasisEnd) and event.channel.id.startswith(TRANSFER_CHANNEL_PREFIX):
            # The transfer target hung up: the caller's call is over too.
            owner = self._transfer_owner(event.channel.id)
            if owner is not None:
                owner.hangup_reason = "transfer target hung up"
                self._spawn(owner.hangup())
        elif isinstance(event, StasisEnd):
            # Forgotten now, not after tear-down: a caller sent back into the dialplan can
            # re-enter the app (StasisStart) before our tear-down of its first visit is done.
            call = self._by_channel.pop(event.channel.id, None)
            if call is not None:
                call.hangup_reason = call.hangup_reason or "caller"
                self._spawn(self._end_call(call))
        elif isinstance(event, ChannelDestroyed) and event.channel.id.startswith(
            TRANSFER_CHANNEL_PREFIX
        ):
            owner = self._transfer_owner(event.channel.id)
            if owner is not None and owner.transfer_leg is not None:
                owner.transfer_leg.failed.set()  # no-op once answered
        elif isinstance(event, ChannelDtmfReceived):
            self._digit(event)
        elif isinstance(event, ChannelDestroyed) and event.channel.id in self._pending_outbound:
            # An originated call that was never answered (busy, no answer, unreachable).
            self._pending_outbound.pop(event.channel.id)
            reason = event.cause_txt or f"cause {event.cause}"
            log.info("call %s: outbound call not answered (%s)", event.channel.id, reason)
            self._spawn(self._observer.outbound_failed(event.channel.id, reason))

    def _digit(self, event: ChannelDtmfReceived) -> None:
        call = self._by_channel.get(event.channel.id)
        if call is not None:
            self._key(call, event.digit, "ari")

    def _key(self, call: ActiveCall, digit: str, source: str) -> None:
        """A key the caller pressed (reported by ``source``: ARI, or the media transport)
        goes to the call's conversation once; with none (a fixed message playing, a
        transfer) it is noted and dropped: nothing there asks for keys."""
        if digit not in DTMF_KEYS or not call.keys.accept(source, digit, time.monotonic()):
            return
        if call.conversation is None:
            log.debug("call %s: DTMF %s with no conversation; ignored", call.call_id, digit)
            return
        log.info("call %s: caller pressed %s (%s)", call.call_id, digit, source)
        call.conversation.digit(digit)

    async def on_connected(self) -> None:
        """After every (re)connect: make our view and Asterisk's agree again."""
        try:
            channels = await self.rest.list_channels()
            bridges = await self.rest.list_bridges()
        except AriError as exc:
            log.warning("reconcile: cannot list channels/bridges: %s", exc)
            return
        alive = {c.id for c in channels}
        for call in list(self.calls.values()):
            if call.channel_id not in alive:
                log.warning("call %s: channel vanished while disconnected", call.call_id)
                call.hangup_reason = call.hangup_reason or "asterisk-restart"
                self._spawn(self._end_call(call))
        ours = {c.media_channel_id for c in self.calls.values()}
        ours |= {c.bridge_id for c in self.calls.values()}
        ours |= {c.transfer_channel_id for c in self.calls.values()}
        for channel in channels:
            if channel.id.startswith(_OUR_LEGS) and channel.id not in ours:
                log.info("reconcile: hanging up leftover channel %s", channel.id)
                await _ignore_gone(self.rest.hangup(channel.id))
        for bridge in bridges:
            if bridge.id.startswith(BRIDGE_PREFIX) and bridge.id not in ours:
                log.info("reconcile: deleting leftover bridge %s", bridge.id)
                await _ignore_gone(self.rest.delete_bridge(bridge.id))
        for channel in channels:
            self._maybe_adopt(channel)

    def _transfer_owner(self, channel_id: str) -> ActiveCall | None:
        return self.calls.get(channel_id.removeprefix(TRANSFER_CHANNEL_PREFIX))

    def _maybe_adopt(self, channel: Channel) -> None:
        if channel.id.startswith(_OUR_LEGS) or channel.id in self._by_channel:
            return
        if channel.id in self._adopting:
            return
        if channel.app_name.lower() != "stasis":
            return
        raw_args = stasis_args_from_app_data(channel.app_data, self.rest.app)
        if raw_args is None:
            return
        log.info("reconcile: adopting channel %s left in the app (flow restarts)", channel.name)
        self._adopting.add(channel.id)  # no second adoption while this one starts
        self._spawn(self._adopt(channel, parse_stasis_args(raw_args)))

    async def _adopt(self, channel: Channel, args: dict[str, str]) -> None:
        # Keep the call id an earlier run gave it (the channel variable only we set; never the
        # caller's Stasis args), so its record and transcript go on.
        earlier = ""
        with contextlib.suppress(AriError):
            earlier = await self.rest.get_variable(channel.id, VAR_CALL_ID)
        call_id = earlier if _reusable_id(earlier) and earlier not in self.calls else None
        # Outbound call ids are the channel ids we chose in originate; callers' never are.
        direction = "out" if call_id == channel.id else "in"
        self._adopting.discard(channel.id)
        await self._handle_call(channel, caller_args(channel, args), direction, call_id, True)

    # --- calls ----------------------------------------------------------------------------

    async def originate(
        self, call_id: str, endpoint: str, args: dict[str, str], caller_id: str | None = None
    ) -> None:
        """Place an outbound call; its flow runs when the far end answers (StasisStart)."""
        self._pending_outbound[call_id] = args
        app_args = ",".join(f"{k}={v}" for k, v in args.items())
        # Set from the start, so a restarted controller can adopt the call even if it was
        # answered while nobody listened.
        variables = {VAR_CALL_ID: call_id, INHERITED_DEPTH: "1"}  # the first hop
        try:
            await self.rest.originate(call_id, endpoint, app_args, caller_id, variables=variables)
        except AriError:
            self._pending_outbound.pop(call_id, None)
            raise

    def find(self, call_id: str) -> ActiveCall | None:
        return self.calls.get(call_id)

    async def _handle_call(
        self,
        channel: Channel,
        args: dict[str, str],
        direction: str,
        call_id: str | None,
        adopted: bool = False,
    ) -> None:
        adopted = adopted and call_id is not None  # an earlier run's id: its record goes on
        # Inbound calls always get a fresh id: nothing a caller sends can name another call.
        call_id = call_id or uuid.uuid4().hex
        link = await self._open_link(call_id, channel)
        if link is None:
            return
        call = ActiveCall(call_id, channel, args, direction, self.rest, link.port)
        link.port.on_key = lambda digit: self._key(call, digit, "media")
        call.max_duration_s = self._max_call_duration_s
        call.adopted = adopted
        if not await self._admit_or_close(call):
            return
        self.calls[call_id] = call
        self._by_channel[channel.id] = call
        started = time.monotonic()
        flow_task: asyncio.Task[None] | None = None
        watchdog: asyncio.Task[None] | None = None
        try:
            await set_up_call(call, link)
            log.info("call %s: ready in %.0f ms", call_id, (time.monotonic() - started) * 1e3)
            await self._observer.call_started(call)
            call.set_state("active")
            flow_task = asyncio.create_task(self._run_flow(call))
            if call.max_duration_s is not None:
                watchdog = asyncio.create_task(enforce_max_duration(call, call.max_duration_s))
            # shielded: a flow cut by the call's end is cancelled below, not in first_of
            await first_of(asyncio.shield(flow_task), call.ended.wait())
            if flow_task.done():
                flow_task.result()  # surface flow errors in the log below
                if not call.transferred:
                    await call.hangup()
        except asyncio.CancelledError:
            raise
        except AriNotFound:
            log.info("call %s: channel left during setup", call_id)
        except Exception:
            log.exception("call %s: failed; hanging up", call_id)
            call.hangup_reason = call.hangup_reason or "error"
            with contextlib.suppress(AriError):
                await call.hangup()
        finally:
            # The flow first: the call's end is recorded after everything it said.
            try:
                await cancel_and_wait(*(t for t in (flow_task, watchdog) if t is not None))
            finally:
                call.flow_stopped.set()
            if call.ended.is_set():
                # The caller may have left mid-setup, after _end_call already cleaned up:
                # delete whatever setup created since (tear-down is idempotent).
                await tear_down_call(call)

    async def _open_link(self, call_id: str, channel: Channel) -> MediaLink | None:
        """The call's media transport, or None (the caller hung up) if it cannot be opened."""
        try:
            return await self._open_media(self._media_settings, self.rest.settings)
        except Exception:  # e.g. no free UDP port, a bad rtp_host: this call fails, not the app
            log.exception("call %s: media transport did not open; hanging up", call_id)
            with contextlib.suppress(AriError):
                await self.rest.hangup(channel.id)
            return None

    async def _admit_or_close(self, call: ActiveCall) -> bool:
        admitted = False
        try:
            admitted = await self._admit(call)
        finally:
            if not admitted:
                await call.media.close()  # never connected: only its socket to free
        return admitted

    async def _admit(self, call: ActiveCall) -> bool:
        """Refuse, before answering, a call over the server's ceiling of calls in progress
        (every call counts, built-in flows and unassigned numbers included), and a call
        ari-offload has already sent on more than MAX_DEPTH times (the loop guard)."""
        if self._max_calls is not None and len(self.calls) >= self._max_calls:
            log.warning(
                "call %s: refused: %d calls in progress, the server allows %d "
                "([quotas] concurrent_calls); hanging up as busy",
                call.call_id, len(self.calls), self._max_calls,
            )  # fmt: skip
            await self._refuse(call, "server-busy", "busy")
            return False
        try:
            call.depth = parse_depth(await self.rest.get_variable(call.channel_id, VAR_DEPTH))
        except AriNotFound:
            log.info("call %s: channel left before set-up", call.call_id)
            return False
        except AriBadId as exc:  # not an id we can put in a URL: we cannot even hang it up
            log.warning("call %s: ignoring channel %s: %s", call.call_id, call.channel.name, exc)
            return False
        except AriError as exc:
            log.warning(
                "call %s: cannot read the channel's depth, not taken: %s", call.call_id, exc
            )
            return False
        if call.depth <= MAX_DEPTH:
            return True
        log.warning(
            "call %s: refused by the loop guard: channel %s was already sent on %d times "
            "(at most %d); hanging up",
            call.call_id, call.channel.name, call.depth, MAX_DEPTH,
        )  # fmt: skip
        await self._refuse(call, "loop-guard", "rejected")
        return False

    async def _refuse(self, call: ActiveCall, reason: str, ari_reason: str) -> None:
        call.hangup_reason = reason
        with contextlib.suppress(AriError):
            await self.rest.hangup(call.channel_id, ari_reason)
        try:
            await self._observer.call_refused(call)
        except Exception:
            log.exception("call %s: observer failed on call_refused", call.call_id)

    async def _end_call(self, call: ActiveCall) -> None:
        if call.ended.is_set():
            return
        call.ended.set()
        call.state = "ended"
        await tear_down_call(call)
        self.calls.pop(call.call_id, None)
        if self._by_channel.get(call.channel_id) is call:
            self._by_channel.pop(call.channel_id)
        log.info("call %s: ended (%s)", call.call_id, call.hangup_reason or "unknown")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FLOW_STOP_TIMEOUT_S):
                await call.flow_stopped.wait()  # its last words are recorded before its end
        try:
            await self._observer.call_ended(call)
        except Exception:
            log.exception("call %s: observer failed on call_ended", call.call_id)

    async def hangup_all(self) -> None:
        """Shutdown: hang up every call and wait until each is torn down."""
        for call in list(self.calls.values()):
            call.hangup_reason = call.hangup_reason or "shutdown"
            with contextlib.suppress(AriError):
                await call.hangup()
            await self._end_call(call)
        # Calls already ending (StasisEnd came first) finish their tear-down and their
        # records; only what is still running after the grace is cut.
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=FLOW_STOP_TIMEOUT_S)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def caller_args(channel: Channel, args: dict[str, str]) -> dict[str, str]:
    """The Stasis args without the keys only the controller may set (a caller can put any
    `key=value` there through an unfiltered dialplan: `8echo,call_id=<another call>`)."""
    if "call_id" in args:
        log.warning(
            "channel %s: ignoring call_id=%r in its Stasis args (set by the caller?)",
            channel.name, args["call_id"][:80],
        )  # fmt: skip
    return {k: v for k, v in args.items() if k != "call_id"}


def _reusable_id(value: str) -> bool:
    try:
        checked_id(value)
    except AriBadId:
        return False
    return True


async def _ignore_gone(step: Awaitable[None]) -> None:
    try:
        await step
    except AriNotFound:
        pass
    except AriError as exc:
        log.warning("reconcile: %s", exc)
