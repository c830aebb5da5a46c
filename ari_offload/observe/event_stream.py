"""The tenants' live event stream: what ``GET /v1.0/events`` serves (api/routes_events.py).

``EventHub.publish`` is told each fact of a tenant's calls (observe/live_events.py tells it)
and never waits: it numbers the event, keeps it in the tenant's history, and appends it to
each of the tenant's subscriptions. A subscription's queue is bounded; one that is full is
dropped there and then (its connection is cut, its queue freed), and so is one that is too
many bytes behind, counting what its socket holds unacknowledged: a reader that stops
reading costs a bounded amount of memory and never slows the call that made the event.

An event, as JSON (``StreamEvent.json``)::

    {"id": "3f9a0c1d-42", "type": "transcript.added", "call_id": "...",
     "at": "2026-12-02T13:04:50.123456+00:00", "data": {...}}

``id`` is ``<stream>-<n>``: ``stream`` is drawn at each start of the server, ``n`` counts the
tenant's own events (one tenant learns nothing of another's traffic from it). A subscriber
that comes back with the last id it saw (``subscribe(last_event_id=...)``) gets every event
after it that the history still holds; when that is not all it missed (the history moved on,
or the server restarted), a ``stream.reset`` event comes first: reload the state from the
REST API, then carry on with the events.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ari_offload.config import ApiSettings
from ari_offload.errors import ValidationError
from ari_offload.observe.metrics import Metrics

log = logging.getLogger("ari_offload.api")

CALL_STARTED = "call.started"  # the call entered the app (answered)
CALL_FAILED = "call.failed"  # an outbound call that was never answered
CALL_ENDED = "call.ended"
TRANSCRIPT_ADDED = "transcript.added"
TRANSCRIPT_CORRECTED = "transcript.corrected"  # what the caller heard of a reply, or more text
TURN_UPDATED = "turn.updated"  # more of a turn was measured
TURN_FINISHED = "turn.finished"  # its reply ended: the timings are final
STREAM_RESET = "stream.reset"  # events were missed: reload from the REST API
EVENT_TYPES = (
    CALL_STARTED, CALL_FAILED, CALL_ENDED, TRANSCRIPT_ADDED, TRANSCRIPT_CORRECTED, TURN_UPDATED,
    TURN_FINISHED, STREAM_RESET,
)  # fmt: skip

MAX_ID_LENGTH = 64
_SWEEP_EVERY = 256  # publishes between two sweeps of every tenant's history by age


def iso_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat()


@dataclass(frozen=True)
class StreamEvent:
    seq: int  # the tenant's own count (0: a reset, which is no event of the tenant's)
    id: str
    type: str
    call_id: str | None
    at: float  # unix seconds: when it happened
    data: Mapping[str, Any]
    wire: bytes = field(repr=False)  # the server-sent-events frame, made once for all readers

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "call_id": self.call_id,
            "at": iso_time(self.at),
            "data": self.data,
        }


def _event(
    seq: int, id_: str, type_: str, call_id: str | None, at: float, data: Any
) -> StreamEvent:
    body = {"id": id_, "type": type_, "call_id": call_id, "at": iso_time(at), "data": data}
    # json.dumps escapes every newline: the data line cannot end the frame early.
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    wire = f"id: {id_}\nevent: {type_}\ndata: {text}\n\n".encode()
    return StreamEvent(seq, id_, type_, call_id, at, data, wire)


class Subscription:
    """One reader's queue. ``next`` waits for its next event; None once closed or dropped."""

    def __init__(
        self,
        hub: EventHub,
        customer_id: str,
        limits: tuple[int, int],
        backlog: list[StreamEvent],
    ) -> None:
        self.customer_id = customer_id
        self._hub = hub
        self._queue: deque[StreamEvent] = deque(backlog)
        self._queued_bytes = sum(len(e.wire) for e in backlog)
        # (events, bytes): a replay may be longer than the live bounds, never longer than that
        self._limit = max(limits[0], len(backlog))
        self._max_bytes = max(limits[1], self._queued_bytes)
        self._wake = asyncio.Event()
        self.dropped = False
        self.closed = False
        # Called once if the subscription is dropped: the server cuts the connection there.
        self.on_drop: Callable[[], None] | None = None
        # Bytes already written to the reader that it has not acknowledged (its socket's).
        self.unacknowledged: Callable[[], int] = lambda: 0

    def __len__(self) -> int:
        return len(self._queue)

    async def next(self) -> StreamEvent | None:
        while not self._queue:
            if self.closed:
                return None
            self._wake.clear()
            await self._wake.wait()
        event = self._queue.popleft()
        self._queued_bytes -= len(event.wire)
        return event

    def close(self) -> None:
        """The reader is gone (or the server stops): no more events."""
        if not self.closed:
            self.closed = True
            self._wake.set()
            self._hub.unsubscribe(self)

    def push(self, event: StreamEvent) -> None:
        if self.closed:
            return
        behind = self._queued_bytes + len(event.wire) + self.unacknowledged()
        if len(self._queue) >= self._limit or behind > self._max_bytes:
            self._drop()
            return
        self._queue.append(event)
        self._queued_bytes += len(event.wire)
        self._wake.set()

    def _drop(self) -> None:
        self.dropped = True
        self._queue.clear()
        self._queued_bytes = 0
        self.close()
        if self.on_drop is not None:
            self.on_drop()


@dataclass
class _Tenant:
    seq: int = 0
    history: deque[StreamEvent] = field(default_factory=deque)
    subscribers: set[Subscription] = field(default_factory=set)


class EventHub:
    """Every tenant's recent events and open subscriptions (one process; single-threaded)."""

    def __init__(
        self,
        settings: ApiSettings | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        settings = settings or ApiSettings()
        self.history_size = settings.stream_history
        self.history_s = settings.stream_history_s
        self.buffer = settings.stream_buffer
        self.backlog_bytes = settings.stream_backlog_bytes
        self.max_subscribers = settings.stream_subscribers
        self.stream = secrets.token_hex(4)
        self._metrics = metrics
        self._clock = clock
        self._tenants: dict[str, _Tenant] = {}
        self._published = 0

    def publish(
        self,
        customer_id: str,
        type_: str,
        call_id: str | None,
        data: Mapping[str, Any],
        at: float | None = None,
    ) -> StreamEvent:
        """Number, keep and hand out one event; never waits."""
        if type_ not in EVENT_TYPES or type_ == STREAM_RESET:
            raise ValueError(f"not a tenant event type: {type_!r}")
        now = self._clock()
        tenant = self._tenants.setdefault(customer_id, _Tenant())
        tenant.seq += 1
        event = _event(
            tenant.seq, f"{self.stream}-{tenant.seq}", type_, call_id,
            now if at is None else at, dict(data),
        )  # fmt: skip
        tenant.history.append(event)
        self._prune(tenant, now)
        for subscription in list(tenant.subscribers):
            subscription.push(event)
        self._published += 1
        if self._published % _SWEEP_EVERY == 0:
            self._sweep(now)
        return event

    def subscribers(self, customer_id: str) -> int:
        """The tenant's open subscriptions."""
        tenant = self._tenants.get(customer_id)
        return len(tenant.subscribers) if tenant is not None else 0

    def full(self, customer_id: str) -> bool:
        """The tenant has as many open subscriptions as allowed."""
        return self.subscribers(customer_id) >= self.max_subscribers

    def subscribe(self, customer_id: str, last_event_id: str | None = None) -> Subscription:
        """A subscription to the tenant's events from now on, after the replay of those it
        missed since ``last_event_id`` (a ``stream.reset`` first if it missed more than the
        history holds). Raises ``ValidationError`` for an id this server never issued the
        form of."""
        tenant = self._tenants.setdefault(customer_id, _Tenant())
        self._prune(tenant, self._clock())
        backlog = [] if last_event_id is None else self._replay(tenant, last_event_id)
        limits = (self.buffer, self.backlog_bytes)
        subscription = Subscription(self, customer_id, limits, backlog)
        tenant.subscribers.add(subscription)
        self._count()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        tenant = self._tenants.get(subscription.customer_id)
        if tenant is not None and subscription in tenant.subscribers:
            tenant.subscribers.discard(subscription)
            if subscription.dropped:
                log.warning(
                    "event stream: a reader of customer %s was dropped: more than %d events "
                    "or %d bytes behind (ARI_OFFLOAD_API_STREAM_BUFFER, _BACKLOG_BYTES); it "
                    "may reconnect and resume", subscription.customer_id, self.buffer,
                    self.backlog_bytes,
                )  # fmt: skip
                if self._metrics is not None:
                    self._metrics.stream_subscriber_dropped()
            self._count()

    def close(self) -> None:
        """Shutdown: every subscription ends (its reader sees the stream end)."""
        for tenant in self._tenants.values():
            for subscription in list(tenant.subscribers):
                subscription.close()

    def _replay(self, tenant: _Tenant, last_event_id: str) -> list[StreamEvent]:
        stream, seq = _parse_id(last_event_id)
        oldest = tenant.history[0].seq if tenant.history else tenant.seq + 1
        if stream == self.stream and oldest - 1 <= seq <= tenant.seq:
            return [e for e in tenant.history if e.seq > seq]  # all it missed: none fell out
        if stream != self.stream:
            reason = "the server restarted: events may have been missed"
        else:
            reason = "the history no longer holds every event after that id"
        missed = list(tenant.history)
        # Its id is the position just before the replay: a reconnect from it resumes here.
        position = missed[0].seq - 1 if missed else tenant.seq
        reset = _event(0, f"{self.stream}-{position}", STREAM_RESET, None, self._clock(),
                       {"reason": reason})  # fmt: skip
        return [reset, *missed]

    def _prune(self, tenant: _Tenant, now: float) -> None:
        history = tenant.history
        while history and (
            len(history) > self.history_size or history[0].at < now - self.history_s
        ):
            history.popleft()

    def _sweep(self, now: float) -> None:
        """Old events of quiet tenants go too. A tenant's count stays (a reader may still
        hold an id of it: a new count would reuse ids where a reset is due)."""
        for tenant in self._tenants.values():
            self._prune(tenant, now)

    def _count(self) -> None:
        if self._metrics is not None:
            total = sum(len(t.subscribers) for t in self._tenants.values())
            self._metrics.stream_subscribers.set(total)


def _parse_id(value: str) -> tuple[str, int]:
    stream, _, seq = value.strip().rpartition("-")
    if len(value) > MAX_ID_LENGTH or not stream or not seq.isdigit():
        raise ValidationError("last_event_id", "not an event id of this stream (<stream>-<n>)")
    return stream, int(seq)
