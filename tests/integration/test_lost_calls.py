"""After a start, the app closes the calls an earlier run left unfinished, and only those: a
call recorded since (an outbound call still ringing, in a cluster one placed here by another
node right after this node came back) belongs to this run."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ari_offload.app import LOST_CALL_REASON, App
from ari_offload.store import CallStatus, Direction

pytestmark = pytest.mark.integration


async def test_only_an_earlier_runs_calls_are_closed_as_lost(app: App) -> None:
    calls = app.store.calls
    customer = await app.store.customers.create("lost-and-found", "lost-and-found-password")
    left = await calls.create(customer.id, direction=Direction.IN, flow_id=None,
                              started_at=app.started_at - timedelta(minutes=5))  # fmt: skip
    await calls.set_status(left.id, CallStatus.ACTIVE)
    ringing = await calls.create(customer.id, direction=Direction.OUT, flow_id=None)

    await app.close_lost_calls()

    closed = await calls.get(left.id, customer_id=None)
    placed = await calls.get(ringing.id, customer_id=None)
    assert closed is not None
    assert placed is not None
    assert (closed.status, closed.hangup_reason) == (CallStatus.ENDED, LOST_CALL_REASON)
    assert (placed.status, placed.hangup_reason) == (CallStatus.RINGING, None)
