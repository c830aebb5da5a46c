"""first_of: the first wait done wins, the rest are cancelled and awaited, errors surface."""

from __future__ import annotations

import asyncio

import pytest

from ari_offload.tasks import first_of


async def test_the_others_are_cancelled_and_awaited() -> None:
    slow = asyncio.Event()

    await first_of(asyncio.sleep(0), slow.wait())

    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


async def test_an_error_of_the_first_wait_done_is_raised_not_lost() -> None:
    async def broken() -> None:
        raise RuntimeError("the port failed")

    with pytest.raises(RuntimeError, match="the port failed"):
        await first_of(broken(), asyncio.Event().wait())
