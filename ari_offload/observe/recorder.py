"""Calls, transcripts and turn timings into the store and the metrics, as they happen.

The controller and the conversation know nothing of persistence; this observer is their only
link to it. A store failure is logged and never ends a call.

Write-ahead: each fact goes to the store the moment it is known, through the call's
``CallJournal`` (in order; the conversation only waits, briefly, for it to catch up before
the agent is asked and before the reply plays); later facts update the rows
(a turn's timing as it is measured, an agent line with what the caller heard of it). A
call's end is written after everything the call said, then its journal closes.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ari_offload.ari.call import ActiveCall
from ari_offload.errors import AriOffloadError
from ari_offload.flows.builtin import BUILTIN_FLOWS
from ari_offload.observe.journal import CallJournal
from ari_offload.observe.metrics import Metrics
from ari_offload.store.records import Call, CallStatus, Direction, Role
from ari_offload.voice.turns import TranscriptEntry, TurnTiming

if TYPE_CHECKING:
    from ari_offload.store.store import Store

log = logging.getLogger("ari_offload.store")

# Asking the agent, and a reply's first audio, wait at most this long for the turn's facts
# to be on record (the writes are small and were queued just before; the bound is for a slow store).
CAUGHT_UP_TIMEOUT_S = 0.25

_ROLES = {"caller": Role.CALLER, "agent": Role.AGENT, "system": Role.SYSTEM}
ADOPTED_TEXT = "ari-offload restarted during the call; the flow began again from its start"


@dataclass
class _Line:
    entry: TranscriptEntry
    seq: int | None = None  # the store's, once the writer has inserted it


@dataclass
class _Record:
    """A recorded call's journal and which of its rows exist (or are queued to)."""

    journal: CallJournal
    customer_id: str
    lines: dict[int, _Line] = field(default_factory=dict)  # by id() of the entry; it holds it
    turns: set[int] = field(default_factory=set)


def _line_text(entry: TranscriptEntry) -> str:
    return entry.text if entry.heard is None else f"{entry.text} [heard: {entry.heard}]"


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

    def __init__(self, store: Store, metrics: Metrics, node_id: str | None = None) -> None:
        self._store = store
        self._metrics = metrics
        self._node_id = node_id  # the cluster node the calls run on (None: a single node)
        self._records: dict[str, _Record] = {}  # calls with a row (built-in flows have none)
        # Calls whose record is being opened: their end waits for it (a slow store must not
        # let the end pass first and leave the record open with its writer running).
        self._opening: dict[str, asyncio.Event] = {}

    async def call_started(self, call: ActiveCall) -> None:
        self._metrics.call_started(call.direction)
        opened = self._opening[call.call_id] = asyncio.Event()
        try:
            await self._start_record(call)
        finally:
            del self._opening[call.call_id]
            opened.set()

    async def _start_record(self, call: ActiveCall) -> None:
        try:
            customer_id = await self._open_record(call)
            if customer_id is None:
                return
            if call.adopted:  # its turns go on after those an earlier run stored
                stored = await self._store.calls.turns(call.call_id)
                call.turns = max((turn.turn for turn in stored), default=0)
        except AriOffloadError as exc:
            log.warning("call %s: not recorded: %s", call.call_id, exc)
            return
        self._records[call.call_id] = _Record(CallJournal(call.call_id), customer_id)
        if call.adopted:
            self.transcript_added(call, TranscriptEntry("system", ADOPTED_TEXT))

    async def close(self) -> None:
        """Shutdown: the writers of calls still open stop (their ends were never signalled)."""
        records, self._records = list(self._records.values()), {}
        for record in records:
            await record.journal.abort()

    def customer_of(self, call_id: str) -> str | None:
        """The tenant whose record the call has (None: not recorded, e.g. a built-in flow)."""
        record = self._records.get(call_id)
        return record.customer_id if record is not None else None

    async def _open_record(self, call: ActiveCall) -> str | None:
        """The call's record, made or found: its customer (None: the call has none)."""
        if call.flow_ref in BUILTIN_FLOWS:
            return None  # the dispatcher runs it whatever the number: no tenant, no record
        calls = self._store.calls
        existing = await calls.get(call.call_id, customer_id=None)
        if existing is None:
            flow = await self._store.flows.for_call(
                flow_id=call.flow_ref, number=call.dialled_number
            )
            if flow is None:
                return None  # a built-in flow, or an unknown one: no customer to file it under
            await calls.create(
                flow.customer_id, direction=Direction(call.direction), flow_id=flow.id,
                caller=call.channel.caller_number or None, channel_id=call.channel_id,
                call_id=call.call_id, started_at=_utc(call.started_at), node_id=self._node_id,
            )  # fmt: skip
            customer_id = flow.customer_id
        elif _belongs_to(existing, call):
            customer_id = existing.customer_id
            await calls.set_channel(call.call_id, call.channel_id)
        else:
            # Another call's record (its id reached us some other way): never write into it.
            log.warning(
                "call %s: a record of that id belongs to another call (channel %s); not recorded",
                call.call_id, existing.channel_id,
            )  # fmt: skip
            return None
        answered = _utc(call.answered_at) if call.answered_at else None
        await calls.set_status(call.call_id, CallStatus.ACTIVE, at=answered)
        return customer_id

    async def call_ended(self, call: ActiveCall) -> None:
        reason = call.hangup_reason or "unknown"
        self._metrics.call_ended(call.direction, reason.split(":")[0])
        for why, count in call.media.stats.dropped.items():
            if count:
                self._metrics.rtp_packet_dropped(why, count)
        opening = self._opening.get(call.call_id)
        if opening is not None:
            await opening.wait()
        record = self._records.get(call.call_id)
        if record is None:
            return
        calls = self._store.calls
        record.journal.submit(
            "end", lambda: calls.set_status(call.call_id, CallStatus.ENDED, reason=reason)
        )
        await record.journal.close()  # after all the call said: its end is the last write
        del self._records[call.call_id]  # not before: a shutdown meanwhile aborts the writer

    async def outbound_failed(self, call_id: str, reason: str) -> None:
        self._metrics.call_not_started("out", "not-answered")
        try:
            await self._store.calls.set_status(call_id, CallStatus.FAILED, reason=reason)
        except AriOffloadError as exc:
            log.warning("call %s: failure not recorded: %s", call_id, exc)

    async def call_refused(self, call: ActiveCall) -> None:
        self._metrics.call_not_started(call.direction, call.hangup_reason or "refused")

    def answered_by(self, call: ActiveCall, who: str) -> None:
        """Who answered an outbound call ("human" or "machine"), into its record."""
        record = self._records.get(call.call_id)
        if record is None:
            return
        calls = self._store.calls
        record.journal.submit("answered by", lambda: calls.set_answered_by(call.call_id, who))

    # --- ConversationObserver: never waits, the journal writes ------------------------------

    def transcript_added(self, call: ActiveCall, entry: TranscriptEntry) -> None:
        record = self._records.get(call.call_id)
        if record is None:
            return
        line = record.lines[id(entry)] = _Line(entry)
        calls = self._store.calls

        async def insert() -> None:
            stored = await calls.add_transcript(
                call.call_id, _ROLES[entry.role], _line_text(entry), at=_utc(entry.at)
            )
            line.seq = stored.seq

        record.journal.submit("transcript line", insert)

    def transcript_corrected(
        self, call: ActiveCall, entry: TranscriptEntry, corrected: TranscriptEntry
    ) -> None:
        record = self._records.get(call.call_id)
        line = record.lines.pop(id(entry), None) if record is not None else None
        if record is None or line is None:
            return
        line.entry = corrected
        record.lines[id(corrected)] = line
        calls, text = self._store.calls, _line_text(corrected)

        async def update() -> None:
            if line.seq is None:
                return  # its insert failed (and said so): nothing to correct
            await calls.update_transcript(call.call_id, line.seq, text)

        record.journal.submit("transcript correction", update)

    def turn_updated(self, call: ActiveCall, timing: TurnTiming) -> None:
        record = self._records.get(call.call_id)
        if record is None:
            return
        turn, values, calls = timing.turn, timing.stored(), self._store.calls  # as of now
        if turn in record.turns:
            record.journal.submit(
                f"turn {turn} update", lambda: calls.update_turn(call.call_id, turn=turn, **values)
            )
        else:
            record.turns.add(turn)
            record.journal.submit(
                f"turn {turn}", lambda: calls.add_turn(call.call_id, turn=turn, **values)
            )

    async def caught_up(self, call: ActiveCall) -> None:
        record = self._records.get(call.call_id)
        if record is None:
            return
        try:
            async with asyncio.timeout(CAUGHT_UP_TIMEOUT_S):
                await record.journal.caught_up()
        except TimeoutError:
            log.warning(
                "call %s: the store is more than %.2f s behind; going on before the turn is "
                "on record (a crash now would lose it)", call.call_id, CAUGHT_UP_TIMEOUT_S,
            )  # fmt: skip

    def turn_finished(self, call: ActiveCall, timing: TurnTiming) -> None:
        self._metrics.turn_finished()
        self._metrics.observe_turn(**timing.latencies_ms())
        if timing.webhook_error:
            self._metrics.webhook_failed(timing.webhook_error)
