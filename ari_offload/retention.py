"""Call retention: ended calls older than the retention period are purged, periodically.

Transcripts and turns go with their call (cascading foreign keys), and so does its recording
(the store deletes the file). The clock is injectable so tests can purge "90 days later"
without waiting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from ari_offload.errors import StoreError
from ari_offload.store._db import utcnow
from ari_offload.store.calls import Calls

log = logging.getLogger("ari_offload.store")

PURGE_INTERVAL_S = 3600.0


async def purge_once(calls: Calls, days: int, now: datetime) -> int:
    """Purge calls that ended more than ``days`` before ``now``; ``days`` 0 keeps all."""
    if days <= 0:
        return 0
    purged = await calls.purge_ended_before(now - timedelta(days=days))
    if purged:
        log.info("retention: purged %d call(s) ended over %d days ago", purged, days)
    return purged


async def run_retention(
    calls: Calls,
    days: int,
    *,
    interval_s: float = PURGE_INTERVAL_S,
    clock: Callable[[], datetime] = utcnow,
) -> None:
    """Purge now, then every ``interval_s``, until cancelled."""
    if days <= 0:
        log.info("retention: calls are kept forever (ARI_OFFLOAD_STORE_RETENTION_DAYS=0)")
        return
    while True:
        try:
            await purge_once(calls, days, clock())
        except StoreError as exc:
            # The database may be away for a while; the next round tries again.
            log.warning("retention: purge failed (%s); retrying in %.0f s", exc, interval_s)
        await asyncio.sleep(interval_s)
