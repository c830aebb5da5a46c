"""Call retention: ended calls older than the retention period are purged, periodically.

Transcripts and turns go with their call (cascading foreign keys), and so does its recording
(the store deletes the file). The clock is injectable so tests can purge "90 days later"
without waiting.

In a cluster a call can be deleted (or purged) by a node that does not hold its recording:
each node's round also removes the recordings in its directory whose call is gone.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from ari_offload.errors import StoreError
from ari_offload.store._db import utcnow
from ari_offload.store.calls import Calls
from ari_offload.store.recording_files import remove_recordings

log = logging.getLogger("ari_offload.store")

PURGE_INTERVAL_S = 3600.0
ORPHAN_GRACE_S = 600.0  # a recording written to this recently is left alone
_RECORDING_SUFFIX = ".wav"  # recordings are <call id>.wav (observe/recording.py)


async def purge_once(calls: Calls, days: int, now: datetime) -> int:
    """Purge calls that ended more than ``days`` before ``now``; ``days`` 0 keeps all."""
    if days <= 0:
        return 0
    purged = await calls.purge_ended_before(now - timedelta(days=days))
    if purged:
        log.info("retention: purged %d call(s) ended over %d days ago", purged, days)
    return purged


async def sweep_recordings(
    calls: Calls, directory: Path, *, grace_s: float = ORPHAN_GRACE_S, now: float | None = None
) -> int:
    """Remove the recordings in ``directory`` whose call no longer exists (deleted or purged
    by another node) and that nothing wrote to for ``grace_s``; returns how many went."""
    idle = await asyncio.to_thread(
        _idle_recordings, directory, time.time() if now is None else now, grace_s
    )
    if not idle:
        return 0
    kept = await calls.existing(idle)
    gone = [path for call_id, path in idle.items() if call_id not in kept]
    removed = await remove_recordings(gone)
    if removed:
        log.info("retention: removed %d recording(s) of deleted calls from %s", removed, directory)
    return removed


def _idle_recordings(directory: Path, now: float, grace_s: float) -> dict[str, Path]:
    found: dict[str, Path] = {}
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return found  # nothing recorded yet
    for entry in entries:
        if not entry.name.endswith(_RECORDING_SUFFIX) or not entry.is_file(follow_symlinks=False):
            continue
        if now - entry.stat().st_mtime >= grace_s:
            found[entry.name.removesuffix(_RECORDING_SUFFIX)] = Path(entry.path)
    return found


async def run_retention(
    calls: Calls,
    days: int,
    *,
    recordings: Path | None = None,
    interval_s: float = PURGE_INTERVAL_S,
    clock: Callable[[], datetime] = utcnow,
) -> None:
    """Purge now, then every ``interval_s``, until cancelled; with ``recordings`` (a cluster
    node's directory), sweep the recordings of calls deleted elsewhere too."""
    if days <= 0:
        log.info("retention: calls are kept forever (ARI_OFFLOAD_STORE_RETENTION_DAYS=0)")
        if recordings is None:
            return
    while True:
        try:
            await purge_once(calls, days, clock())
            if recordings is not None:
                await sweep_recordings(calls, recordings)
        except (StoreError, OSError) as exc:
            # The database (or the disk) may be away for a while; the next round tries again.
            log.warning("retention: round failed (%s); retrying in %.0f s", exc, interval_s)
        await asyncio.sleep(interval_s)
