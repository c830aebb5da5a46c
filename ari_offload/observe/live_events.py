"""A call's facts as tenant stream events (observe/event_stream.py), as they happen.

A CallObserver and a ConversationObserver, told after the recorder (app.py orders them): the
recorder has opened the call's record by then, and says whose call it is; a call with no
record (a built-in flow) belongs to no tenant and is not streamed. Events, in order:

* ``call.started``  ``{"direction", "caller", "started_at", "answered_at"}``
* ``transcript.added``  ``{"index", "role", "text", "at", "heard"}``: ``index`` counts the
  call's lines from 0, as ``GET /v1.0/calls/{id}`` lists them
* ``transcript.corrected``  the same, for the line at ``index``: ``heard`` is what the caller
  heard of an interrupted reply (null again if a false interruption let it play out), or a
  streamed reply's ``text`` grew
* ``turn.updated``  ``{"turn", <the turn's timings so far, as the API's turns>}``, as the turn
  is numbered and as its reply's first audio goes out
* ``turn.finished``  the same, final, with ``"interrupted"``, ``"caller"``, ``"agent"`` (the
  turn's lines) and ``"heard"``
* ``call.ended``  ``{"reason", "duration_s"}``, after the call's record is closed
* ``call.failed``  ``{"reason"}``: an outbound call that never answered

Every hook only publishes (``EventHub.publish`` never waits).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ari_offload.ari.call import ActiveCall
from ari_offload.errors import AriOffloadError
from ari_offload.observe.event_stream import (
    CALL_ENDED,
    CALL_FAILED,
    CALL_STARTED,
    TRANSCRIPT_ADDED,
    TRANSCRIPT_CORRECTED,
    TURN_FINISHED,
    TURN_UPDATED,
    EventHub,
    iso_time,
)
from ari_offload.store.store import Store
from ari_offload.voice.turns import TranscriptEntry, TurnTiming

log = logging.getLogger("ari_offload.api")

# The tenant of a call: the recorder's answer (None: no record, so no tenant to tell).
CustomerOf = Callable[[str], str | None]


@dataclass
class _Streamed:
    customer_id: str
    lines: dict[int, int] = field(default_factory=dict)  # id() of an entry -> its index
    count: int = 0  # lines so far
    last: dict[str, TranscriptEntry] = field(default_factory=dict)  # by role


def _line(index: int, entry: TranscriptEntry) -> dict[str, Any]:
    return {
        "index": index,
        "role": entry.role,
        "text": entry.text,
        "at": iso_time(entry.at),
        "heard": entry.heard,
    }


class LiveEvents:
    def __init__(
        self,
        hub: EventHub,
        customer_of: CustomerOf,
        store: Store,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._hub = hub
        self._customer_of = customer_of
        self._store = store
        self._clock = clock
        self._calls: dict[str, _Streamed] = {}

    def _publish(self, call_id: str, type_: str, data: Mapping[str, Any]) -> None:
        streamed = self._calls.get(call_id)
        if streamed is not None:
            self._hub.publish(streamed.customer_id, type_, call_id, data)

    # --- CallObserver ---------------------------------------------------------------------

    async def call_started(self, call: ActiveCall) -> None:
        customer_id = self._customer_of(call.call_id)
        if customer_id is None:
            return
        self._calls[call.call_id] = _Streamed(customer_id)
        self._publish(call.call_id, CALL_STARTED, {
            "direction": call.direction,
            "caller": call.channel.caller_number or None,
            "started_at": iso_time(call.started_at),
            "answered_at": iso_time(call.answered_at) if call.answered_at else None,
        })  # fmt: skip

    async def call_ended(self, call: ActiveCall) -> None:
        reason = call.hangup_reason or "unknown"
        duration = round(max(0.0, self._clock() - call.started_at), 3)
        self._publish(call.call_id, CALL_ENDED, {"reason": reason, "duration_s": duration})
        self._calls.pop(call.call_id, None)

    async def outbound_failed(self, call_id: str, reason: str) -> None:
        try:
            record = await self._store.calls.get(call_id, customer_id=None)
        except AriOffloadError as exc:
            log.warning("call %s: its failure is not streamed: %s", call_id, exc)
            return
        if record is not None:  # placed through the API: a tenant's call
            self._hub.publish(record.customer_id, CALL_FAILED, call_id, {"reason": reason})

    async def call_refused(self, call: ActiveCall) -> None:
        return None  # never started, never streamed

    # --- ConversationObserver -------------------------------------------------------------

    def transcript_added(self, call: ActiveCall, entry: TranscriptEntry) -> None:
        streamed = self._calls.get(call.call_id)
        if streamed is None:
            return
        index = streamed.lines[id(entry)] = streamed.count
        streamed.count += 1
        streamed.last[entry.role] = entry
        self._publish(call.call_id, TRANSCRIPT_ADDED, _line(index, entry))

    def transcript_corrected(
        self, call: ActiveCall, entry: TranscriptEntry, corrected: TranscriptEntry
    ) -> None:
        streamed = self._calls.get(call.call_id)
        index = streamed.lines.pop(id(entry), None) if streamed is not None else None
        if streamed is None or index is None:
            return
        # The old entry is gone (the book holds the corrected one): its id() may be reused.
        streamed.lines[id(corrected)] = index
        if streamed.last.get(corrected.role) is entry:
            streamed.last[corrected.role] = corrected
        self._publish(call.call_id, TRANSCRIPT_CORRECTED, _line(index, corrected))

    def turn_updated(self, call: ActiveCall, timing: TurnTiming) -> None:
        self._publish(call.call_id, TURN_UPDATED, timing.as_dict())

    def turn_finished(self, call: ActiveCall, timing: TurnTiming) -> None:
        streamed = self._calls.get(call.call_id)
        if streamed is None:
            return
        caller, agent = streamed.last.get("caller"), streamed.last.get("agent")
        self._publish(call.call_id, TURN_FINISHED, {
            **timing.as_dict(),
            "caller": caller.text if caller is not None else None,
            "agent": agent.text if agent is not None else None,
            "heard": agent.heard if agent is not None else None,
        })  # fmt: skip

    async def caught_up(self, call: ActiveCall) -> None:
        return None  # nothing to write
