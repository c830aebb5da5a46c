"""Removing call recordings from disk: the files of calls deleted (by the API or retention on
this node) and, in a cluster, those of calls another node deleted (retention's sweep)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable

log = logging.getLogger("ari_offload.store")


async def remove_recordings(paths: Iterable[str | os.PathLike[str] | None]) -> int:
    """Delete these recording files, off the event loop; one already gone is fine. Returns
    how many were deleted."""
    files = [path for path in paths if path]
    return await asyncio.to_thread(_unlink_all, files) if files else 0


def _unlink_all(paths: list[str | os.PathLike[str]]) -> int:
    removed = 0
    for path in paths:
        try:
            os.unlink(path)
            removed += 1
        except FileNotFoundError:
            pass
        except OSError as exc:  # the row is gone; the operator's log says what stayed
            log.warning("could not delete the recording %s: %s", path, exc)
    return removed
