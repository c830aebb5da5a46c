"""What only PostgreSQL has: its URL from the environment, its errors, column types, and
connections that the server drops. test_store.py runs everything else on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from ari_offload.config import Settings, StoreSettings
from ari_offload.errors import StoreError
from ari_offload.store import Direction, Role, Store
from tests.api_support import FAST_HASHER
from tests.postgres_fixture import PostgresServer, free_port


async def test_the_documented_environment_variable_selects_postgresql(postgres_url: str) -> None:
    settings = Settings.from_env({"ARI_OFFLOAD_STORE_URL": postgres_url})
    async with await Store.open(settings.store, password_hasher=FAST_HASHER) as store:
        assert store.engine.dialect.name == "postgresql"
        customer = await store.customers.create("alice", "password1")
        assert await store.customers.authenticate("alice", "password1") == customer


@pytest.mark.parametrize("problem", ["no such database", "nobody listening", "unknown role"])
async def test_unusable_postgresql_is_a_store_error_without_the_password(
    postgres: PostgresServer, problem: str
) -> None:
    port = {"nobody listening": free_port()}.get(problem, postgres.port)
    user = "nobody" if problem == "unknown role" else "postgres"
    database = "no_such_db" if problem == "no such database" else postgres.database
    url = f"postgresql+asyncpg://{user}:hunter2@127.0.0.1:{port}/{database}"
    with pytest.raises(StoreError) as err:
        await Store.open(StoreSettings(url=url))
    assert "postgresql" in str(err.value)
    assert "hunter2" not in str(err.value)


async def test_columns_are_native_types_with_bytewise_strings(postgres_url: str) -> None:
    async with (
        await Store.open(StoreSettings(url=postgres_url)) as store,
        store.engine.connect() as conn,
    ):
        rows = (
            await conn.execute(
                text(
                    "SELECT table_name || '.' || column_name, data_type, collation_name"
                    " FROM information_schema.columns WHERE table_schema = 'public'"
                )
            )
        ).all()
    columns = {name: (kind, collation) for name, kind, collation in rows}
    assert columns["calls.started_at"] == ("timestamp with time zone", None)
    assert columns["schema_version.applied_at"] == ("timestamp with time zone", None)
    assert columns["flows.actions"] == ("json", None)
    assert columns["turns.stt_ms"] == ("double precision", None)
    assert columns["transcript_entries.text"][0] == "text"
    strings = [name for name, (kind, _) in columns.items() if kind == "character varying"]
    assert len(strings) > 20
    assert {columns[name][1] for name in strings} == {"C"}


async def test_the_store_survives_the_server_dropping_its_connections(
    postgres: PostgresServer, postgres_url: str
) -> None:
    # A PostgreSQL restart or failover closes every session; the pool must not hand them out.
    async with await Store.open(StoreSettings(url=postgres_url)) as store:
        cid = (await store.customers.create("alice", "password1")).id
        call = await store.calls.create(cid, direction=Direction.IN, flow_id=None)
        admin = create_async_engine(postgres.url, isolation_level="AUTOCOMMIT")
        try:
            async with admin.connect() as conn:
                killed = (
                    await conn.execute(
                        text(
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                            " WHERE datname = :db"
                        ),
                        {"db": postgres_url.rsplit("/", 1)[1]},
                    )
                ).scalar_one()
        finally:
            await admin.dispose()
        assert killed >= 1
        await store.calls.add_transcript(call.id, Role.CALLER, "still here")
        assert [e.text for e in await store.calls.transcript(call.id)] == ["still here"]
