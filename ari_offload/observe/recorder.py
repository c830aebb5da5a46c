"""Calls, transcripts and turn timings into the store and the metrics, as they happen.

The controller and the conversation know nothing of persistence; this observer is their only
link to it. A store failure is logged and never ends a call.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ari_offload.ari.call import ActiveCall
from ari_offload.errors import AriOffloadError
from ari_offload.observe.metrics import Metrics
from ari_offload.store.records import Call, CallStatus, Direction, Role
from ari_offload.voice.turns import TranscriptEntry, TurnTiming

if TYPE_CHECKING:
    from ari_offload.store.store import Store

log = logging.getLogger("ari_offload.store")

_ROLES = {"caller": Role.CALLER, "agent": Role.AGENT, "system": Role.SYSTEM}


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


def _belongs_to(record: Call, call: ActiveCall) -> bool:
    """The record is this call's: the outbound record we originated under the channel's id,
    or the record of this very channel (adopted after a restart)."""
    if record.direction == Direction.OUT and record.id == call.channel_id:
        return True
    return record.channel_id is not None and record.channel_id == call.channel_id


class CallRecorder:
    """A CallObserver and a ConversationObserver that write to the store and the metrics."""

    def __init__(self, store: Store, metrics: Metrics) -> None:
        self._store = store
        self._metrics = metrics
        self._recorded: set[str] = set()  # calls that have a row (built-in flows have none)

    async def call_started(self, call: ActiveCall) -> None:
        self._metrics.call_started(call.direction)
        try:
            await self._open_record(call)
        except AriOffloadError as exc:
            log.warning("call %s: not recorded: %s", call.call_id, exc)

    async def _open_record(self, call: ActiveCall) -> None:
        calls = self._store.calls
        existing = await calls.get(call.call_id, customer_id=None)
        if existing is None:
            flow = await self._store.flows.for_call(
                flow_id=call.flow_ref, number=call.dialled_number
            )
            if flow is None:
                return  # a built-in flow, or an unknown one: no customer to file it under
            await calls.create(
                flow.customer_id, direction=Direction(call.direction), flow_id=flow.id,
                caller=call.channel.caller_number or None, channel_id=call.channel_id,
                call_id=call.call_id, started_at=_utc(call.started_at),
            )  # fmt: skip
        elif _belongs_to(existing, call):
            await calls.set_channel(call.call_id, call.channel_id)
        else:
            # Another call's record (its id reached us some other way): never write into it.
            log.warning(
                "call %s: a record of that id belongs to another call (channel %s); not recorded",
                call.call_id, existing.channel_id,
            )  # fmt: skip
            return
        answered = _utc(call.answered_at) if call.answered_at else None
        await calls.set_status(call.call_id, CallStatus.ACTIVE, at=answered)
        self._recorded.add(call.call_id)

    async def call_ended(self, call: ActiveCall) -> None:
        reason = call.hangup_reason or "unknown"
        self._metrics.call_ended(call.direction, reason.split(":")[0])
        for why, count in call.media.stats.dropped.items():
            if count:
                self._metrics.rtp_packet_dropped(why, count)
        if call.call_id not in self._recorded:
            return
        self._recorded.discard(call.call_id)
        try:
            await self._store.calls.set_status(call.call_id, CallStatus.ENDED, reason=reason)
        except AriOffloadError as exc:
            log.warning("call %s: end not recorded: %s", call.call_id, exc)

    async def outbound_failed(self, call_id: str, reason: str) -> None:
        self._metrics.call_not_started("out", "not-answered")
        try:
            await self._store.calls.set_status(call_id, CallStatus.FAILED, reason=reason)
        except AriOffloadError as exc:
            log.warning("call %s: failure not recorded: %s", call_id, exc)

    async def call_refused(self, call: ActiveCall) -> None:
        self._metrics.call_not_started(call.direction, call.hangup_reason or "refused")

    async def transcript_added(self, call: ActiveCall, entry: TranscriptEntry) -> None:
        if call.call_id not in self._recorded:
            return
        text = entry.text if entry.heard is None else f"{entry.text} [heard: {entry.heard}]"
        try:
            await self._store.calls.add_transcript(call.call_id, _ROLES[entry.role], text)
        except AriOffloadError as exc:
            log.warning("call %s: transcript line not recorded: %s", call.call_id, exc)

    async def turn_finished(self, call: ActiveCall, timing: TurnTiming) -> None:
        self._metrics.observe_turn(**timing.latencies_ms())
        if timing.webhook_error:
            self._metrics.webhook_failed(timing.webhook_error)
        if call.call_id not in self._recorded:
            return
        try:
            await self._store.calls.add_turn(call.call_id, turn=timing.turn, **timing.stored())
        except AriOffloadError as exc:
            log.warning("call %s: turn not recorded: %s", call.call_id, exc)
