"""Password hashing on its own small thread pool, with a bounded queue.

argon2id is made to be slow and memory-hard (64 MiB per hash by default). On the shared default
pool a login flood would queue ahead of speech work; here at most ``workers`` hashes run at
once, at most ``max_waiting`` more wait, and anything beyond is refused at once with ``Busy``.
A waiter that is cancelled (its client went away) leaves before it costs a hash.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ari_offload.errors import Busy

HASH_WORKERS = 1
HASH_MAX_WAITING = 8
BUSY_RETRY_AFTER_S = 2.0

_T = TypeVar("_T")


class PasswordPool:
    def __init__(
        self,
        hasher: PasswordHasher,
        *,
        workers: int = HASH_WORKERS,
        max_waiting: int = HASH_MAX_WAITING,
    ) -> None:
        self.hasher = hasher
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="argon2")
        self._slots = asyncio.Semaphore(workers)
        self._capacity = workers + max_waiting
        self._pending = 0
        self.hashes = 0  # hash and verify calls run: evidence of what a flood cost
        self._closed = False

    async def hash(self, password: str) -> str:
        return await self._run(self.hasher.hash, password)

    async def verify(self, pw_hash: str, password: str) -> bool:
        return await self._run(self._verify, pw_hash, password)

    def needs_rehash(self, pw_hash: str) -> bool:
        return self.hasher.check_needs_rehash(pw_hash)

    async def close(self) -> None:
        """Stop taking work and wait for a running hash (off the loop) to finish."""
        if not self._closed:
            self._closed = True
            await asyncio.to_thread(self._executor.shutdown, True, cancel_futures=True)

    async def _run(self, fn: Callable[..., _T], *args: str) -> _T:
        if self._pending >= self._capacity or self._closed:
            raise Busy("password hashing", BUSY_RETRY_AFTER_S)
        self._pending += 1
        try:
            await self._slots.acquire()  # cancelled here: it never cost a hash
        except BaseException:
            self._pending -= 1
            raise
        loop = asyncio.get_running_loop()
        try:
            job = self._executor.submit(fn, *args)
        except RuntimeError:  # shut down meanwhile
            self._finished()
            raise Busy("password hashing", BUSY_RETRY_AFTER_S) from None
        self.hashes += 1
        # The slot frees when the thread is done, not when the request is: a client that
        # hangs up mid-hash must not let another hash start beside the one still running.
        job.add_done_callback(lambda _: loop.call_soon_threadsafe(self._finished))
        return await asyncio.wrap_future(job)

    def _finished(self) -> None:
        self._pending -= 1
        self._slots.release()

    def _verify(self, pw_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(pw_hash, password)
        except (VerificationError, InvalidHashError):
            return False
