"""Who answered an outbound call, in its record: the answered_by column (migration
_v6_answered_by), on a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from ari_offload.config import StoreSettings
from ari_offload.store import CallStatus, Direction, Store, database_url, schema
from tests.api_support import FAST_HASHER
from tests.test_store import schema_version_table


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


async def test_a_call_says_who_answered_once_told(store: Store) -> None:
    cid = (await store.customers.create("alice", "password1")).id
    call = await store.calls.create(cid, direction=Direction.OUT, flow_id=None)
    assert call.answered_by is None  # nobody asked yet

    await store.calls.set_answered_by(call.id, "machine")

    stored = await store.calls.get(call.id, customer_id=cid)
    assert stored is not None
    assert stored.answered_by == "machine"
    listed = await store.calls.list(cid)
    assert [c.answered_by for c in listed] == ["machine"]


async def test_only_a_person_or_a_machine_can_have_answered(store: Store) -> None:
    cid = (await store.customers.create("alice", "password1")).id
    call = await store.calls.create(cid, direction=Direction.OUT, flow_id=None)
    with pytest.raises(ValueError, match="answered_by"):
        await store.calls.set_answered_by(call.id, "fax")


async def test_a_database_before_answered_by_gains_the_column_and_keeps_its_calls(
    settings: StoreSettings,
) -> None:
    # As a release before answering-machine detection left it: calls without the column.
    engine = create_async_engine(database_url(settings))
    before = schema.MIGRATIONS.index(schema._v6_answered_by)

    def without_answered_by(conn: Connection) -> None:
        schema_version_table(conn, before)
        conn.exec_driver_sql("ALTER TABLE calls DROP COLUMN answered_by")
        conn.exec_driver_sql(
            "INSERT INTO customers (id, name, password_hash, created_at) "
            "VALUES ('c1', 'old', 'x', '2026-01-01 00:00:00+00:00')"
        )
        conn.exec_driver_sql(
            "INSERT INTO calls (id, customer_id, direction, status, started_at) "
            "VALUES ('k1', 'c1', 'out', 'ended', '2026-01-01 00:00:00+00:00')"
        )

    async with engine.begin() as conn:
        await conn.run_sync(without_answered_by)
    await engine.dispose()
    async with await Store.open(settings, password_hasher=FAST_HASHER) as store:
        old = await store.calls.get("k1", customer_id="c1")
        assert old is not None
        assert (old.status, old.answered_by) == (CallStatus.ENDED, None)
        await store.calls.set_answered_by("k1", "human")
        again = await store.calls.get("k1", customer_id="c1")
        assert again is not None
        assert again.answered_by == "human"
