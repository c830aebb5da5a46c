"""Structured waiting: every task started here is cancelled and awaited before we return.

A task left pending when its owner is cancelled is logged as "Task was destroyed but it is
pending!" when collected (and its exception, if any, as never retrieved); these helpers are
the one way the package waits on several things at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any


async def first_of(*waits: Awaitable[object]) -> None:
    """Return when the first of ``waits`` is done (``asyncio.sleep(s)`` among them: a time
    limit); the others are cancelled and awaited, on every path, our own cancellation too.
    If the first one done failed, its error is raised here (never lost)."""
    tasks: list[asyncio.Future[Any]] = [asyncio.ensure_future(wait) for wait in waits]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await cancel_and_wait(*tasks)
    for task in tasks:
        error = task.exception() if task in done and not task.cancelled() else None
        if error is not None:
            raise error


async def cancel_and_wait(*tasks: asyncio.Future[Any]) -> None:
    """Cancel ``tasks`` and wait for them, so none is left pending (or its error unread).

    ``asyncio.wait`` never raises what the tasks raised, so a cancellation of our own task
    while waiting still propagates.
    """
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved: an error nobody reads is not logged at teardown
