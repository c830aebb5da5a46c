"""Admitting a recorded call under the call quotas, atomically across every node.

A call is recorded first (so its end is recorded whatever happens), then admitted: in one
transaction that holds the store's quota lock, the admitted calls are counted for each limit,
and the call is marked admitted (``admitted_at``) only if it fits under all of them. The
admissions of every node take turns on that lock, and a call recorded but not yet admitted
counts for nobody: of two calls racing for the last slot, on one node or two, exactly one
gets it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ari_offload.store import schema as t
from ari_offload.store._db import Repo
from ari_offload.store.records import CallStatus

# pg_advisory_xact_lock key serialising admissions on PostgreSQL: "aoff-quo".
QUOTA_LOCK = 0x616F66662D71756F
_UNFINISHED = [CallStatus.RINGING.value, CallStatus.ACTIVE.value]


@dataclass(frozen=True)
class QuotaLimit:
    rule: str  # the policy rule that sets it, e.g. tenant.concurrent_calls
    limit: int
    customer_id: str | None  # whose calls count (None: every customer's)
    since: datetime | None  # None: calls in progress count; else calls started since then


class Admissions(Repo):
    async def admit(
        self, call_id: str, limits: Sequence[QuotaLimit], at: datetime
    ) -> QuotaLimit | None:
        """Admit the recorded call ``call_id``; returns the first limit it would exceed
        (it is then not admitted), or None (admitted at ``at``)."""
        async with self._tx() as conn:
            await _take_quota_lock(conn)
            for limit in limits:
                if await _count(conn, limit, call_id) + 1 > limit.limit:
                    return limit
            await conn.execute(
                update(t.calls).where(t.calls.c.id == call_id).values(admitted_at=at)
            )
        return None


async def _count(conn: AsyncConnection, limit: QuotaLimit, call_id: str) -> int:
    """The other admitted calls that count for ``limit``."""
    c = t.calls.c
    query = select(func.count()).where(c.admitted_at.is_not(None), c.id != call_id)
    if limit.customer_id is not None:
        query = query.where(c.customer_id == limit.customer_id)
    if limit.since is None:
        query = query.where(c.status.in_(_UNFINISHED))
    else:
        query = query.where(c.started_at >= limit.since)
    return int((await conn.execute(query)).scalar() or 0)


async def _take_quota_lock(conn: AsyncConnection) -> None:
    """Hold the quota lock until the transaction ends (the other admissions wait)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(select(func.pg_advisory_xact_lock(QUOTA_LOCK)))
    elif conn.dialect.name == "sqlite":
        # The driver would begin the transaction only at the update, after the counts: take
        # the write lock first (waits for the busy timeout if another connection has it).
        await conn.exec_driver_sql("BEGIN IMMEDIATE")
