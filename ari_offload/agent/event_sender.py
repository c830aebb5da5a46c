"""The async shell around ``events.Outbox``: one background task posts call events.

``EventSender.send`` never waits and never raises: a call hands its event over and goes on,
whatever the receiver does. The worker task takes due deliveries from the outbox, posts each
in a task of its own (``post``: ``WebhookClient.post_event``, through the egress-guarded
session), and reports the outcome back to the outbox and the counter.

Logs: a receiver that fails is a WARNING (the first failure of an event, and giving it up),
retries in between are INFO; a full outbox is one WARNING per burst of drops. URLs appear
as ``safe_url`` (no query string, no user info); secrets never.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from ari_offload.agent.events import CallEvent, Delivery, Outbox, Outcome, RetryPolicy
from ari_offload.agent.http_reply import safe_url
from ari_offload.config import EventsSettings
from ari_offload.errors import WebhookError
from ari_offload.tasks import cancel_and_wait

log = logging.getLogger("ari_offload.agent")

# POST(url, body, delivery id, secret); raises WebhookError when the receiver failed.
Post = Callable[[str, bytes, str, str | None], Awaitable[None]]
Count = Callable[[Outcome], None]


class EventSender:
    """Delivers call events in the background: in order per call, retried, bounded."""

    def __init__(
        self,
        post: Post,
        settings: EventsSettings | None = None,
        count: Count | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        settings = settings or EventsSettings()
        policy = RetryPolicy(settings.attempts, settings.first_retry_s, settings.max_retry_s)
        self.outbox = Outbox(policy, settings.max_queued, settings.max_in_flight)
        self._post = post
        self._count = count or (lambda outcome: None)
        self._clock = clock
        self._grace_s = settings.shutdown_grace_s
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()  # nothing queued
        self._idle.set()
        self._attempts: set[asyncio.Task[None]] = set()
        self._worker: asyncio.Task[None] | None = None
        self._dropping = False  # in a burst of drops: said once

    def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.create_task(self._run(), name="call-events")

    def send(self, url: str, secret: str | None, event: CallEvent) -> None:
        """Queue ``event`` for ``url``; never waits. Dropped (counted) if the queue is full."""
        if not self.outbox.add(Delivery(event, url, secret), self._clock()):
            self._count(Outcome.DROPPED)
            if not self._dropping:
                self._dropping = True
                log.warning(
                    "call %s: call events are arriving faster than receivers take them: %d "
                    "queued (the limit, [events] max_queued); dropping new ones until there "
                    "is room (dropped: %s, %s)",
                    event.call_id, len(self.outbox), event.type, event.id,
                )  # fmt: skip
            return
        if self._dropping and len(self.outbox) <= self.outbox.max_queued // 2:
            self._dropping = False  # the burst is over: the next drop is said again
        self._idle.clear()
        self._wake.set()

    async def drained(self) -> None:
        """Return once nothing is queued or in flight (tests; shutdown)."""
        await self._idle.wait()

    async def close(self) -> None:
        """Give what is queued ``shutdown_grace_s`` to go out, then stop; the rest is lost
        (said in a WARNING: events live in memory only)."""
        if self._worker is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._grace_s):
                await self.drained()
        await cancel_and_wait(self._worker, *self._attempts)
        self._worker = None
        lost = list(self.outbox.pending())
        if lost:
            log.warning(
                "call events: %d not delivered at shutdown (the oldest: %s %s of call %s to %s)",
                len(lost), lost[0].event.type, lost[0].event.id, lost[0].event.call_id,
                safe_url(lost[0].url),
            )  # fmt: skip

    async def _run(self) -> None:
        while True:
            self._wake.clear()  # before looking: a send from now on wakes the wait below
            for delivery in self.outbox.due(self._clock()):
                task = asyncio.create_task(self._attempt(delivery), name="call-event-post")
                self._attempts.add(task)
                task.add_done_callback(self._attempts.discard)
            due = self.outbox.next_due()
            timeout = None if due is None else max(0.0, due - self._clock())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    async def _attempt(self, delivery: Delivery) -> None:
        event = delivery.event
        try:
            await self._post(delivery.url, event.to_json(), event.id, delivery.secret)
        except WebhookError as exc:
            outcome = self.outbox.failed(delivery, self._clock())
            self._log_failure(delivery, outcome, exc)
        except Exception:  # a bug here must cost one event, never the worker
            log.exception("call %s: posting event %s failed", event.call_id, event.id)
            outcome = self.outbox.failed(delivery, self._clock())
        else:
            outcome = self.outbox.delivered(delivery)
            log.debug(
                "call %s: event %s %s delivered (attempt %d)",
                event.call_id, event.type, event.id, delivery.attempts,
            )  # fmt: skip
        self._count(outcome)
        if not len(self.outbox):
            self._idle.set()
        self._wake.set()

    def _log_failure(self, delivery: Delivery, outcome: Outcome, exc: WebhookError) -> None:
        event, attempts = delivery.event, delivery.attempts
        where = f"{event.type} {event.id} to {safe_url(delivery.url)}"
        if outcome is Outcome.GAVE_UP:
            log.warning(
                "call %s: event %s given up after %d attempts: %s",
                event.call_id, where, attempts, exc,
            )  # fmt: skip
            return
        level = logging.WARNING if attempts == 1 else logging.INFO
        log.log(
            level, "call %s: event %s failed (attempt %d of %d), retrying in %.1f s: %s",
            event.call_id, where, attempts, self.outbox.policy.attempts,
            self.outbox.policy.delay_after(attempts), exc,
        )  # fmt: skip
