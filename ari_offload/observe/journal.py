"""One call's write-ahead journal: its store writes, in order, off the call's own path.

Observers hand a write in without waiting (``submit``), the moment a fact is known: a slow
store never delays a turn, and a conversation cancelled by the caller's hangup cannot lose
a write it has handed in. One writer task per call performs them in order; a write that
fails is logged and the next one goes on. ``close`` writes what is queued, then ends the
writer; ``abort`` (shutdown) cancels it. What a SIGKILL takes is only what was still queued.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from ari_offload.errors import AriOffloadError
from ari_offload.tasks import cancel_and_wait

log = logging.getLogger("ari_offload.store")

Write = Callable[[], Awaitable[object]]


class CallJournal:
    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        self._queue: asyncio.Queue[tuple[str, Write] | None] = asyncio.Queue()
        self._closed = False
        self._writer = asyncio.create_task(self._write_in_order(), name=f"journal-{call_id}")

    def submit(self, what: str, write: Write) -> None:
        """Queue ``write`` (``what`` names it in a warning if it fails); never waits."""
        if self._closed:
            log.warning("call %s: %s came after the call's end; not recorded", self.call_id, what)
            return
        self._queue.put_nowait((what, write))

    async def caught_up(self) -> None:
        """Return once every write handed in so far is done (at once if the journal is closed)."""
        if self._closed:
            return
        done = asyncio.Event()

        async def mark() -> None:
            done.set()

        self._queue.put_nowait(("mark", mark))
        await done.wait()

    async def close(self) -> None:
        """Write everything queued, then end the writer. A cancel of the caller's wait leaves
        the writer going (``abort`` ends it)."""
        if not self._closed:
            self._closed = True
            self._queue.put_nowait(None)
        await asyncio.wait({self._writer})

    async def abort(self) -> None:
        """Shutdown: stop writing, whatever is still queued."""
        self._closed = True
        await cancel_and_wait(self._writer)
        left = [item for item in _drain(self._queue) if item is not None]
        if left:
            log.warning("call %s: %d writes not recorded at shutdown", self.call_id, len(left))

    async def _write_in_order(self) -> None:
        while (item := await self._queue.get()) is not None:
            what, write = item
            try:
                await write()
            except AriOffloadError as exc:  # the store said no: this fact is lost, not the call
                log.warning("call %s: %s not recorded: %s", self.call_id, what, exc)
            except Exception:  # a bug: logged as one, and the call's later writes still go in
                log.exception("call %s: %s not recorded", self.call_id, what)


def _drain(queue: asyncio.Queue[tuple[str, Write] | None]) -> list[tuple[str, Write] | None]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items
