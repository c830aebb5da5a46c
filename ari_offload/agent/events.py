"""Call events for an agent's events URL, sans-IO: the payload, and the outbox that orders,
retries and bounds their deliveries.

An agent with an ``events_url`` is told, by POST, what happens to the calls it talks in::

    {"id": "<delivery id>", "type": "call.started", "call_id": "...", "agent_id": "...",
     "at": "2026-12-02T13:04:50.123456+00:00", "data": {...}}

``type`` is one of ``EVENT_TYPES``. ``id`` is made once per event and sent again, unchanged,
with every retry of it (in the body and as the ``X-Ari-Offload-Delivery`` header): a receiver
that saw it already answers 2xx and ignores it. Requests are signed exactly as webhook requests
are (``contract.sign``: a fresh timestamp on every attempt, the body is the same bytes).

The ``Outbox`` holds the deliveries of every call in lanes, one lane per (call, agent): only
the head of a lane is ever in flight, so the events of one call arrive in order, and a failed
head is retried (``RetryPolicy``: exponential backoff, a bounded number of attempts) before the
next one goes. A head that runs out of attempts is given up and its lane goes on. The outbox
is bounded (``max_queued`` deliveries in all): ``add`` refuses past it, and the caller counts
the drop. Time is passed in (monotonic seconds); nothing here touches a loop or a socket.
"""

from __future__ import annotations

import json
import uuid
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from ari_offload.config import (
    DEFAULT_EVENTS_ATTEMPTS,
    DEFAULT_EVENTS_FIRST_RETRY_S,
    DEFAULT_EVENTS_MAX_IN_FLIGHT,
    DEFAULT_EVENTS_MAX_QUEUED,
    DEFAULT_EVENTS_MAX_RETRY_S,
)

CALL_STARTED = "call.started"
CALL_ANSWERED = "call.answered"
TURN_FINISHED = "turn.finished"
CALL_ENDED = "call.ended"
EVENT_TYPES = (CALL_STARTED, CALL_ANSWERED, TURN_FINISHED, CALL_ENDED)

BACKOFF_FACTOR = 2.0


@dataclass(frozen=True)
class CallEvent:
    """One event, as its receiver gets it; ``id`` is the delivery id, kept across retries."""

    id: str
    type: str
    call_id: str
    agent_id: str
    at: str  # ISO 8601, UTC: when it happened (not when it was sent)
    data: Mapping[str, Any]

    def to_json(self) -> bytes:
        body = {
            "id": self.id,
            "type": self.type,
            "call_id": self.call_id,
            "agent_id": self.agent_id,
            "at": self.at,
            "data": self.data,
        }
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def new_event(
    type_: str, call_id: str, agent_id: str, at: float, data: Mapping[str, Any]
) -> CallEvent:
    """An event that happened at ``at`` (unix seconds), with a new delivery id."""
    if type_ not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type_!r}; expected one of {EVENT_TYPES}")
    return CallEvent(str(uuid.uuid4()), type_, call_id, agent_id, iso_time(at), dict(data))


def iso_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat()


@dataclass(frozen=True)
class RetryPolicy:
    """How often a delivery is tried, and how long it waits between two tries."""

    attempts: int = DEFAULT_EVENTS_ATTEMPTS
    first_retry_s: float = DEFAULT_EVENTS_FIRST_RETRY_S
    max_retry_s: float = DEFAULT_EVENTS_MAX_RETRY_S
    factor: float = BACKOFF_FACTOR

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")
        if self.first_retry_s < 0 or self.max_retry_s < self.first_retry_s:
            raise ValueError(
                f"retry delays must satisfy 0 <= first ({self.first_retry_s:g} s) <= max "
                f"({self.max_retry_s:g} s)"
            )
        if self.factor < 1:
            raise ValueError(f"backoff factor must be at least 1, got {self.factor:g}")

    def delay_after(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1 is the first)."""
        return float(min(self.max_retry_s, self.first_retry_s * self.factor ** (attempt - 1)))


@dataclass(eq=False)
class Delivery:
    """One event on its way to one URL; ``attempts`` made so far, next one due at ``due_at``."""

    event: CallEvent
    url: str
    secret: str | None = field(repr=False)
    attempts: int = 0
    due_at: float = 0.0

    @property
    def lane(self) -> tuple[str, str]:
        return (self.event.call_id, self.event.agent_id)


class Outcome(StrEnum):
    """What became of a delivery attempt (the label of the deliveries counter)."""

    DELIVERED = "delivered"
    RETRY = "retry"  # failed, tried again later
    GAVE_UP = "gave_up"  # failed, and that was the last attempt
    DROPPED = "dropped"  # never queued: the outbox was full


class Outbox:
    """Deliveries in lanes: in order per lane, one in flight per lane, retried with backoff."""

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        max_queued: int = DEFAULT_EVENTS_MAX_QUEUED,
        max_in_flight: int = DEFAULT_EVENTS_MAX_IN_FLIGHT,
    ) -> None:
        if max_queued < 1 or max_in_flight < 1:
            raise ValueError("max_queued and max_in_flight must be at least 1")
        self.policy = policy or RetryPolicy()
        self.max_queued = max_queued
        self.max_in_flight = max_in_flight
        self._lanes: dict[tuple[str, str], deque[Delivery]] = {}
        self._in_flight: set[tuple[str, str]] = set()
        self._queued = 0

    def __len__(self) -> int:
        """Deliveries not done yet, in flight included."""
        return self._queued

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def add(self, delivery: Delivery, now: float) -> bool:
        """Queue at the end of its lane, due at once (if first); False when full (dropped)."""
        if self._queued >= self.max_queued:
            return False
        delivery.due_at = now
        self._lanes.setdefault(delivery.lane, deque()).append(delivery)
        self._queued += 1
        return True

    def due(self, now: float) -> list[Delivery]:
        """The lane heads to try now (marked in flight), oldest due first."""
        ready = sorted(
            (lane[0] for key, lane in self._lanes.items() if key not in self._in_flight),
            key=lambda d: d.due_at,
        )
        picked = [d for d in ready if d.due_at <= now][: self.max_in_flight - self.in_flight]
        for delivery in picked:
            self._in_flight.add(delivery.lane)
            delivery.attempts += 1
        return picked

    def next_due(self) -> float | None:
        """When the next head not in flight is due (None: nothing waits, or no room to send)."""
        if self.in_flight >= self.max_in_flight:
            return None  # a finished attempt makes room, and the caller looks again then
        waiting = [lane[0].due_at for k, lane in self._lanes.items() if k not in self._in_flight]
        return min(waiting, default=None)

    def delivered(self, delivery: Delivery) -> Outcome:
        self._finish(delivery)
        return Outcome.DELIVERED

    def failed(self, delivery: Delivery, now: float) -> Outcome:
        """The attempt failed: due again after the backoff, or given up after the last one."""
        self._in_flight.discard(delivery.lane)
        if delivery.attempts >= self.policy.attempts:
            self._finish(delivery)
            return Outcome.GAVE_UP
        delivery.due_at = now + self.policy.delay_after(delivery.attempts)
        return Outcome.RETRY

    def _finish(self, delivery: Delivery) -> None:
        self._in_flight.discard(delivery.lane)
        lane = self._lanes[delivery.lane]
        if not lane or lane[0] is not delivery:
            raise ValueError("only a lane's head, the delivery in flight, can finish")
        lane.popleft()
        self._queued -= 1
        if not lane:  # else its next head is due since it was added: at once
            del self._lanes[delivery.lane]

    def pending(self) -> Iterator[Delivery]:
        """Every delivery not done yet, lane by lane."""
        for lane in self._lanes.values():
            yield from lane
