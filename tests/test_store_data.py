"""Keys and data: the SQLite file is private, argon2 has its own bounded pool, live keys are
capped, ended calls can be deleted and are purged after the retention period."""

from __future__ import annotations

import asyncio
import os
import stat
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import pytest
from argon2 import PasswordHasher
from sqlalchemy import text

from ari_offload.config import StoreSettings
from ari_offload.errors import Busy, KeyLimitReached
from ari_offload.retention import ORPHAN_GRACE_S, purge_once, run_retention, sweep_recordings
from ari_offload.store import CallStatus, Direction, Role, Store
from ari_offload.store.passwords import PasswordPool
from tests.api_support import FAST_HASHER


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> StoreSettings:
    if request.param == "sqlite":
        return StoreSettings(data_dir=tmp_path)
    return StoreSettings(data_dir=tmp_path, url=request.getfixturevalue("postgres_url"))


@pytest.fixture
async def store(settings: StoreSettings) -> AsyncIterator[Store]:
    s = await Store.open(settings, password_hasher=FAST_HASHER)
    yield s
    await s.close()


async def _count(store: Store, sql: str) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


async def test_sqlite_file_and_its_wal_and_shm_are_0600(tmp_path: Path) -> None:
    old = os.umask(0)  # even a careless umask must not make it readable by others
    try:
        store = await Store.open(
            StoreSettings(data_dir=tmp_path / "data"), password_hasher=FAST_HASHER
        )
    finally:
        os.umask(old)
    try:
        await store.customers.create("alice", "password1")  # the WAL files exist while open
        files = sorted(p.name for p in (tmp_path / "data").iterdir())
        assert files == ["ari-offload.db", "ari-offload.db-shm", "ari-offload.db-wal"]
        for name in files:
            mode = stat.S_IMODE(os.stat(tmp_path / "data" / name).st_mode)
            assert mode == 0o600, f"{name}: {mode:o}"
        assert stat.S_IMODE(os.stat(tmp_path / "data").st_mode) == 0o700
    finally:
        await store.close()


async def test_an_existing_readable_database_is_made_private(tmp_path: Path) -> None:
    async with await Store.open(StoreSettings(data_dir=tmp_path), password_hasher=FAST_HASHER):
        pass
    db = tmp_path / "ari-offload.db"
    db.chmod(0o644)
    async with await Store.open(StoreSettings(data_dir=tmp_path), password_hasher=FAST_HASHER):
        assert stat.S_IMODE(db.stat().st_mode) == 0o600


class GatedHasher(PasswordHasher):
    """Real argon2 that waits for ``gate`` first and records the thread it ran on."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.gate = threading.Event()
        self.threads: list[str] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.threads.append(threading.current_thread().name)
        self.gate.wait(10)
        return super().verify(hash, password)


async def test_argon2_runs_on_its_own_pool_and_a_full_queue_is_refused_at_once() -> None:
    hasher = GatedHasher()
    pool = PasswordPool(hasher, workers=1, max_waiting=2)
    pw_hash = FAST_HASHER.hash("password1")
    accepted = [asyncio.create_task(pool.verify(pw_hash, "password1")) for _ in range(3)]
    await asyncio.sleep(0.05)
    with pytest.raises(Busy) as refused:  # the fourth: 1 running + 2 waiting is the bound
        await pool.verify(pw_hash, "password1")
    assert refused.value.retry_after_s > 0
    assert pool.hashes == 1  # only one in the thread, the others wait without cost
    hasher.gate.set()
    assert await asyncio.gather(*accepted) == [True, True, True]
    assert all(name.startswith("argon2") for name in hasher.threads), hasher.threads
    await pool.close()
    with pytest.raises(Busy):
        await pool.verify(pw_hash, "password1")


async def test_a_cancelled_waiter_never_costs_a_hash() -> None:
    hasher = GatedHasher()
    pool = PasswordPool(hasher, workers=1, max_waiting=4)
    pw_hash = FAST_HASHER.hash("password1")
    running = asyncio.create_task(pool.verify(pw_hash, "password1"))
    waiting = asyncio.create_task(pool.verify(pw_hash, "password1"))
    await asyncio.sleep(0.05)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    hasher.gate.set()
    assert await running is True
    assert len(hasher.threads) == 1
    await pool.close()


async def test_live_keys_are_capped_per_customer(store: Store) -> None:
    alice = (await store.customers.create("alice", "password1")).id
    bob = (await store.customers.create("bob", "password1")).id
    keys = [await store.keys.create(alice, max_live=3) for _ in range(3)]
    with pytest.raises(KeyLimitReached) as err:
        await store.keys.create(alice, max_live=3)
    assert err.value.limit == 3
    await store.keys.create(bob, max_live=3)  # another customer's count is their own
    await store.keys.revoke(keys[0].key.id, customer_id=alice)
    past = datetime.now(UTC) - timedelta(seconds=1)
    async with store.engine.begin() as conn:  # expire one: expired keys are not live either
        await conn.execute(
            text("UPDATE access_keys SET expires_at = :t WHERE id = :id"),
            {"t": past, "id": keys[1].key.id},
        )
    assert await store.keys.count_live(alice) == 1
    await store.keys.create(alice, max_live=3)
    await store.keys.create(alice, max_live=3)
    with pytest.raises(KeyLimitReached):
        await store.keys.create(alice, max_live=3)


async def _call_with_history(store: Store, customer: str, *, ended_at: datetime | None) -> str:
    call = await store.calls.create(customer, direction=Direction.IN, flow_id=None)
    await store.calls.set_status(call.id, CallStatus.ACTIVE)
    await store.calls.add_transcript(call.id, Role.CALLER, "hello")
    await store.calls.add_turn(call.id, turn=1, total_ms=900.0)
    if ended_at is not None:
        await store.calls.set_status(call.id, CallStatus.ENDED, at=ended_at)
    return call.id


async def test_delete_takes_the_transcript_and_turns_and_spares_live_calls(store: Store) -> None:
    alice = (await store.customers.create("alice", "password1")).id
    bob = (await store.customers.create("bob", "password1")).id
    ended = await _call_with_history(store, alice, ended_at=datetime.now(UTC))
    live = await _call_with_history(store, alice, ended_at=None)

    assert await store.calls.delete(ended, customer_id=bob) is False  # not bob's
    assert await store.calls.delete(live, customer_id=alice) is False  # still active
    assert await store.calls.delete(ended, customer_id=alice) is True
    assert await store.calls.get(ended, customer_id=alice) is None
    assert await store.calls.get(live, customer_id=alice) is not None
    assert await _count(store, "SELECT count(*) FROM transcript_entries") == 1  # the live one's
    assert await _count(store, "SELECT count(*) FROM turns") == 1


async def test_retention_purges_only_final_calls_older_than_the_period(store: Store) -> None:
    alice = (await store.customers.create("alice", "password1")).id
    now = datetime(2030, 6, 1, tzinfo=UTC)  # injected: no waiting 90 days
    old = await _call_with_history(store, alice, ended_at=now - timedelta(days=91))
    recent = await _call_with_history(store, alice, ended_at=now - timedelta(days=89))
    old_but_live = await _call_with_history(store, alice, ended_at=None)

    assert await purge_once(store.calls, 0, now) == 0  # 0 keeps everything
    assert await purge_once(store.calls, 90, now) == 1
    remaining = {c.id for c in await store.calls.list(alice)}
    assert remaining == {recent, old_but_live}
    assert old not in remaining
    assert await _count(store, "SELECT count(*) FROM transcript_entries") == 2
    assert await _count(store, "SELECT count(*) FROM turns") == 2


async def test_the_retention_task_purges_until_cancelled(store: Store) -> None:
    alice = (await store.customers.create("alice", "password1")).id
    now = datetime(2030, 6, 1, tzinfo=UTC)
    clock: list[datetime] = [now]
    kept = await _call_with_history(store, alice, ended_at=now - timedelta(days=5))
    task = asyncio.create_task(
        run_retention(store.calls, 30, interval_s=0.01, clock=lambda: clock[0])
    )
    await asyncio.sleep(0.1)
    assert [c.id for c in await store.calls.list(alice)] == [kept]
    clock[0] = now + timedelta(days=40)  # a later round purges it
    for _ in range(200):
        if not await store.calls.list(alice):
            break
        await asyncio.sleep(0.02)
    assert await store.calls.list(alice) == []
    task.cancel()
    (result,) = await asyncio.gather(task, return_exceptions=True)
    assert isinstance(result, asyncio.CancelledError)


async def test_default_hashes_use_one_lane_and_old_hashes_are_upgraded(tmp_path: Path) -> None:
    store = await Store.open(StoreSettings(data_dir=tmp_path))  # the default (costly) hasher
    try:
        await store.customers.create("alice", "password1")
        async with store.engine.connect() as conn:
            pw_hash = (await conn.execute(text("SELECT password_hash FROM customers"))).scalar_one()
        assert pw_hash.startswith("$argon2id$v=19$m=65536,t=3,p=1$")
        four_lanes = PasswordHasher().hash("password1")  # what earlier versions stored
        async with store.engine.begin() as conn:
            await conn.execute(text("UPDATE customers SET password_hash = :h"), {"h": four_lanes})
        assert await store.customers.authenticate("alice", "password1") is not None
        async with store.engine.connect() as conn:
            upgraded = (
                await conn.execute(text("SELECT password_hash FROM customers"))
            ).scalar_one()
        assert ",p=1$" in upgraded
    finally:
        await store.close()


async def test_a_calls_recording_file_goes_with_the_call_deleted_or_purged(
    store: Store, tmp_path: Path
) -> None:
    alice = (await store.customers.create("alice", "password1")).id
    now = datetime.now(UTC)
    files = {}
    for name, ended in (("deleted", now), ("old", now - timedelta(days=91)), ("recent", now)):
        call_id = await _call_with_history(store, alice, ended_at=ended)
        files[name] = tmp_path / f"{call_id}.wav"
        files[name].write_bytes(b"RIFF")
        assert await store.calls.set_recording(call_id, str(files[name]), now) == str(files[name])
        # Recorded once: a second start (an adopted call's flow begins again) keeps the file.
        assert await store.calls.set_recording(call_id, "/elsewhere.wav", now) == str(files[name])
        call = await store.calls.get(call_id, customer_id=alice)
        assert call is not None
        assert call.recording_path == str(files[name])
        assert call.recording_started_at == now
    assert await store.calls.set_recording("no-such-call", "/x.wav", now) is None

    deleted_id = files["deleted"].stem
    assert await store.calls.delete(deleted_id, customer_id=alice) is True
    assert not files["deleted"].exists()
    assert await purge_once(store.calls, 90, now) == 1
    assert not files["old"].exists()
    assert files["recent"].exists(), "a call within the retention period keeps its recording"

    files["recent"].unlink()  # already gone (removed by hand): the call still deletes
    assert await store.calls.delete(files["recent"].stem, customer_id=alice) is True


async def test_a_nodes_sweep_removes_the_recordings_of_calls_deleted_elsewhere(
    store: Store, tmp_path: Path
) -> None:
    """In a cluster another node may delete (or purge) a call this node recorded: the row
    goes there, the file stays here until this node's retention round sweeps it."""
    alice = (await store.customers.create("alice", "password1")).id
    kept_id = await _call_with_history(store, alice, ended_at=datetime.now(UTC))
    gone_id = await _call_with_history(store, alice, ended_at=datetime.now(UTC))
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    long_ago = datetime.now(UTC).timestamp() - ORPHAN_GRACE_S - 60
    files = {
        "kept": recordings / f"{kept_id}.wav",  # its call is still there
        "gone": recordings / f"{gone_id}.wav",  # deleted by another node (below)
        "writing": recordings / "call-being-written.wav",  # no row yet visible, but busy
        "other": recordings / "notes.txt",  # not a recording
    }
    for name, path in files.items():
        path.write_bytes(b"RIFF")
        if name != "writing":
            os.utime(path, (long_ago, long_ago))
    assert await store.calls.existing([kept_id, gone_id, "no-such-call"]) == {kept_id, gone_id}
    async with store.engine.begin() as conn:  # another node's DELETE: the row only
        await conn.execute(text("DELETE FROM calls WHERE id = :id"), {"id": gone_id})

    assert await sweep_recordings(store.calls, recordings) == 1
    assert {name for name, path in files.items() if path.exists()} == {"kept", "writing", "other"}
    assert await sweep_recordings(store.calls, tmp_path / "never-recorded") == 0


async def test_a_cluster_nodes_retention_sweeps_even_when_calls_are_kept_forever(
    store: Store, tmp_path: Path
) -> None:
    orphan = tmp_path / "orphan-call.wav"
    orphan.write_bytes(b"RIFF")
    os.utime(orphan, (0, 0))
    task = asyncio.create_task(run_retention(store.calls, 0, recordings=tmp_path, interval_s=0.01))
    for _ in range(200):
        if not orphan.exists():
            break
        await asyncio.sleep(0.02)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert not orphan.exists()
    # Without a recordings directory (one node: it deletes its files itself) days=0 returns.
    await asyncio.wait_for(run_retention(store.calls, 0, interval_s=0.01), 1)
