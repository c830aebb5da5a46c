"""The store on a real SQLite file and a real PostgreSQL: accounts, scoping, flows resolution,
call records. Every test taking ``store`` runs on both backends, each on a fresh database."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.schema import CreateTable

from ari_offload.config import StoreSettings
from ari_offload.errors import AgentInUse, NameTaken, StoreError, ValidationError
from ari_offload.flows.actions import AiTalk, Talk
from ari_offload.store import (
    CallStatus,
    Direction,
    Role,
    Store,
    database_url,
    schema,
)
from ari_offload.store._db import utcnow
from ari_offload.store.schema import SCHEMA_VERSION, metadata, schema_version
from tests.api_support import FAST_HASHER


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> StoreSettings:
    """SQLite in tmp_path, or a fresh database on the throwaway PostgreSQL server."""
    if request.param == "sqlite":
        return StoreSettings(data_dir=tmp_path)
    return StoreSettings(data_dir=tmp_path, url=request.getfixturevalue("postgres_url"))


@pytest.fixture
async def store(settings: StoreSettings) -> AsyncIterator[Store]:
    s = await Store.open(settings, password_hasher=FAST_HASHER)
    yield s
    await s.close()


async def _scalar(store: Store, sql: str) -> Any:
    """One value read straight from the database, around the repositories."""
    async with store.engine.connect() as conn:
        return (await conn.execute(text(sql))).scalar_one()


async def _customer(store: Store, name: str = "alice") -> str:
    return (await store.customers.create(name, "password1")).id


async def test_sqlite_file_in_data_dir_and_migration_is_idempotent(tmp_path: Path) -> None:
    settings = StoreSettings(data_dir=tmp_path / "new" / "dir")
    assert database_url(settings).endswith("/new/dir/ari-offload.db")
    for _ in range(2):
        store = await Store.open(settings, password_hasher=FAST_HASHER)
        await store.close()
    db = sqlite3.connect(tmp_path / "new" / "dir" / "ari-offload.db")
    versions = db.execute("SELECT version FROM schema_version").fetchall()
    assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]  # each ran once


async def test_unusable_url_is_a_store_error() -> None:
    with pytest.raises(StoreError):
        await Store.open(StoreSettings(url="nosuchdb+driver://x/y"))


async def test_passwords_are_argon2_hashes_and_checked(store: Store) -> None:
    customer = await store.customers.create("alice", "password1")
    with pytest.raises(NameTaken):
        await store.customers.create("alice", "another-pw")
    assert await store.customers.authenticate("alice", "password1") == customer
    assert await store.customers.authenticate("alice", "password2") is None
    assert await store.customers.authenticate("nobody", "password1") is None
    stored = await _scalar(store, "SELECT password_hash FROM customers")
    assert stored.startswith("$argon2id$")
    assert "password1" not in stored


async def test_access_keys_store_only_a_hash(store: Store) -> None:
    cid = await _customer(store)
    new = await store.keys.create(cid, name="ci")
    assert "token" not in repr(new)
    token_hash = await _scalar(store, "SELECT token_hash FROM access_keys")
    assert token_hash == hashlib.sha256(new.token.encode()).hexdigest()
    key = await store.keys.authenticate(new.token)
    assert key is not None
    assert key.customer_id == cid
    listed = await store.keys.list(cid)
    assert [k.id for k in listed] == [new.key.id]
    assert listed[0].last_used_at is not None
    assert await store.keys.authenticate(new.token + "x") is None
    assert await store.keys.authenticate("") is None


async def test_revoked_and_expired_keys_do_not_authenticate(store: Store) -> None:
    cid, other = await _customer(store), await _customer(store, "bob")
    revoked = await store.keys.create(cid)
    assert await store.keys.revoke(revoked.key.id, customer_id=other) is None
    done = await store.keys.revoke(revoked.key.id, customer_id=cid)
    assert done is not None
    assert done.revoked_at is not None
    assert await store.keys.authenticate(revoked.token) is None
    past = datetime.now(UTC) - timedelta(seconds=1)
    expired = await store.keys.create(cid, expires_at=past)
    assert await store.keys.authenticate(expired.token) is None
    future = await store.keys.create(cid, expires_at=datetime.now(UTC) + timedelta(hours=1))
    assert await store.keys.authenticate(future.token) is not None


async def test_agents_are_scoped_to_their_customer(store: Store) -> None:
    alice, bob = await _customer(store), await _customer(store, "bob")
    agent = await store.agents.create(
        alice, name="a", webhook="http://127.0.0.1:9/x", secret="s3cret"
    )
    assert "s3cret" not in repr(agent)
    with pytest.raises(NameTaken):
        await store.agents.create(alice, name="a", webhook="http://127.0.0.1:9/x")
    await store.agents.create(bob, name="a", webhook="http://127.0.0.1:9/y")  # own namespace
    assert await store.agents.get(agent.id, customer_id=bob) is None
    assert await store.agents.get(agent.id, customer_id=None) == agent
    assert await store.agents.update(agent.id, customer_id=bob, name="z") is None
    changed = await store.agents.update(agent.id, customer_id=alice, voice="v1", secret=None)
    assert changed is not None
    assert changed.voice == "v1"
    assert changed.secret is None
    with pytest.raises(TypeError):
        await store.agents.update(agent.id, customer_id=alice, customer_id_x="nope")
    assert [a.name for a in await store.agents.list(alice)] == ["a"]
    assert not await store.agents.delete(agent.id, customer_id=bob)
    assert await store.agents.delete(agent.id, customer_id=alice)


async def test_flow_needs_own_agent_and_agent_in_use_cannot_go(store: Store) -> None:
    alice, bob = await _customer(store), await _customer(store, "bob")
    bobs = await store.agents.create(bob, name="b", webhook="http://127.0.0.1:9/x")
    with pytest.raises(ValidationError) as err:
        await store.flows.create(alice, name="f", actions=[Talk("hi"), AiTalk(bobs.id)])
    assert err.value.field == "actions[1].agent_id"
    mine = await store.agents.create(alice, name="a", webhook="http://127.0.0.1:9/x")
    flow = await store.flows.create(alice, name="f", actions=[AiTalk(mine.id, "Hello")])
    assert flow.actions == (AiTalk(mine.id, "Hello"),)
    with pytest.raises(NameTaken):
        await store.flows.create(alice, name="f", actions=[Talk("x")])
    with pytest.raises(AgentInUse) as in_use:
        await store.agents.delete(mine.id, customer_id=alice)
    assert in_use.value.flow_names == ["f"]
    updated = await store.flows.update(flow.id, customer_id=alice, actions=[Talk("bye")])
    assert updated is not None
    assert updated.actions == (Talk("bye"),)
    assert await store.agents.delete(mine.id, customer_id=alice)


async def test_calls_find_flows_by_id_or_assigned_number_never_by_name(store: Store) -> None:
    alice, bob = await _customer(store), await _customer(store, "bob")
    a = await store.flows.create(alice, name="support", actions=[Talk("a")])
    b = await store.flows.create(bob, name="support", actions=[Talk("b")])
    assert await store.flows.for_call(flow_id=a.id) == a
    assert await store.flows.for_call(flow_id=b.id) == b
    # The attack of issue 7: a flow named like a route or a number is never looked up.
    assert await store.flows.for_call(flow_id="support") is None
    bobs_1234 = await store.flows.create(bob, name="1234", actions=[Talk("b")])
    assert await store.flows.for_call(number="1234") is None
    await store.numbers.assign("1234", customer_id=alice, flow_id=a.id)
    assert await store.flows.for_call(number="1234") == a
    assert bobs_1234 != a
    # Deleting the flow keeps the number the tenant's, pointing nowhere.
    assert await store.flows.delete(a.id, customer_id=alice)
    assert await store.flows.for_call(number="1234") is None
    kept = await store.numbers.get("1234")
    assert kept is not None
    assert (kept.customer_id, kept.flow_id) == (alice, None)
    assert await store.flows.for_call(number="9999") is None


async def test_call_lifecycle_moves_forward_only(store: Store) -> None:
    cid = await _customer(store)
    flow = await store.flows.create(cid, name="f", actions=[Talk("x")])
    call = await store.calls.create(
        cid,
        direction=Direction.IN,
        flow_id=flow.id,
        caller="1000",
        destination="7000",
        channel_id="chan-1",
    )
    assert call.status == CallStatus.RINGING
    active = await store.calls.set_status(call.id, CallStatus.ACTIVE)
    assert active is not None
    assert active.answered_at is not None
    ended = await store.calls.set_status(call.id, CallStatus.ENDED, reason="caller")
    assert ended is not None
    assert ended.ended_at is not None
    assert ended.hangup_reason == "caller"
    late = await store.calls.set_status(call.id, CallStatus.FAILED, reason="late event")
    assert late == ended
    again = await store.calls.set_status(call.id, CallStatus.ACTIVE)
    assert again == ended
    assert await store.calls.set_status("no-such-call", CallStatus.ENDED) is None


async def test_transcript_and_turns(store: Store) -> None:
    cid = await _customer(store)
    call = await store.calls.create(
        cid, direction=Direction.OUT, flow_id=None, destination="PJSIP/alice"
    )
    await store.calls.add_transcript(call.id, Role.AGENT, "Hello!")
    await store.calls.add_transcript(call.id, Role.CALLER, "I need help")
    await store.calls.add_turn(
        call.id,
        turn=1,
        endpoint_ms=500,
        stt_ms=610.5,
        webhook_ms=80,
        tts_first_audio_ms=120,
        total_ms=1310.5,
    )
    await store.calls.add_turn(call.id, turn=2, webhook_error="timeout")
    with pytest.raises(StoreError):
        await store.calls.add_turn(call.id, turn=2)
    with pytest.raises(StoreError):
        await store.calls.add_transcript("no-such-call", Role.CALLER, "x")
    lines = await store.calls.transcript(call.id)
    assert [(e.role, e.text) for e in lines] == [
        (Role.AGENT, "Hello!"),
        (Role.CALLER, "I need help"),
    ]
    turns = await store.calls.turns(call.id)
    assert [t.turn for t in turns] == [1, 2]
    assert turns[0].stt_ms == 610.5
    assert turns[1].webhook_error == "timeout"


async def test_a_turn_and_a_line_are_updated_as_later_facts_arrive(store: Store) -> None:
    cid = await _customer(store)
    call = await store.calls.create(cid, direction=Direction.IN, flow_id=None)
    other = await store.calls.create(cid, direction=Direction.IN, flow_id=None)
    await store.calls.add_turn(call.id, turn=1, endpoint_ms=400, stt_ms=60)
    await store.calls.add_turn(other.id, turn=1, endpoint_ms=1)
    await store.calls.update_turn(
        call.id, turn=1, webhook_ms=80, webhook_error="timeout", total_ms=600
    )
    (turn,) = await store.calls.turns(call.id)
    assert (turn.endpoint_ms, turn.stt_ms, turn.webhook_ms, turn.total_ms) == (400, 60, 80, 600)
    assert (turn.webhook_error, turn.tts_first_audio_ms) == ("timeout", None)
    (untouched,) = await store.calls.turns(other.id)
    assert (untouched.endpoint_ms, untouched.webhook_ms) == (1, None), "another call's turn 1"
    with pytest.raises(StoreError, match="no turn 2"):
        await store.calls.update_turn(call.id, turn=2, webhook_ms=1)
    with pytest.raises(ValueError, match="not stored turn fields: interrupted"):
        await store.calls.update_turn(call.id, turn=1, interrupted=1)

    line = await store.calls.add_transcript(call.id, Role.AGENT, "One two three.")
    await store.calls.add_transcript(call.id, Role.CALLER, "Stop")
    await store.calls.update_transcript(call.id, line.seq, "One two three. [heard: One]")
    assert [e.text for e in await store.calls.transcript(call.id)] == [
        "One two three. [heard: One]", "Stop",
    ]  # fmt: skip
    with pytest.raises(StoreError, match="no transcript line"):
        await store.calls.update_transcript(other.id, line.seq, "not that call's line")


async def test_a_turn_stored_with_a_class_name_reads_back_as_the_failure(store: Store) -> None:
    # Before issue 8 the recorder stored type(error).__name__; the API now serves the kind.
    cid = await _customer(store)
    call = await store.calls.create(cid, direction=Direction.IN, flow_id=None)
    await store.calls.add_turn(call.id, turn=1, webhook_error="WebhookStatusError")
    await store.calls.add_turn(call.id, turn=2, webhook_error="EgressRefused")
    turns = await store.calls.turns(call.id)
    assert [t.webhook_error for t in turns] == ["status", "unreachable"]


async def test_list_filters_newest_first_and_survives_flow_deletion(store: Store) -> None:
    alice, bob = await _customer(store), await _customer(store, "bob")
    flow = await store.flows.create(alice, name="f", actions=[Talk("x")])
    t0 = datetime.now(UTC)
    ids = []
    for i in range(3):
        call = await store.calls.create(
            alice, direction=Direction.IN, flow_id=flow.id, started_at=t0 + timedelta(seconds=i)
        )
        ids.append(call.id)
    await store.calls.create(bob, direction=Direction.IN, flow_id=None)
    await store.calls.set_status(ids[0], CallStatus.ACTIVE)
    await store.calls.set_status(ids[1], CallStatus.FAILED, reason="busy")
    assert [c.id for c in await store.calls.list(alice)] == ids[::-1]
    assert [c.id for c in await store.calls.list(alice, limit=1)] == [ids[2]]
    active = await store.calls.list(alice, statuses=[CallStatus.ACTIVE])
    assert [c.id for c in active] == [ids[0]]
    live = await store.calls.list(alice, statuses=[CallStatus.RINGING, CallStatus.ACTIVE])
    assert {c.id for c in live} == {ids[0], ids[2]}
    assert len(await store.calls.list_unfinished()) == 3  # two of alice's, one of bob's
    assert await store.calls.get(ids[0], customer_id=bob) is None
    assert await store.flows.delete(flow.id, customer_id=alice)
    kept = await store.calls.get(ids[0], customer_id=alice)
    assert kept is not None
    assert kept.flow_id is None


def test_schema_compiles_for_postgresql() -> None:
    # The tests above run the real thing; this one needs no server and shows the DDL's shape.
    dialect = make_url("postgresql+asyncpg://").get_dialect()()  # asyncpg itself not needed
    ddl = "\n".join(
        str(CreateTable(t).compile(dialect=dialect))
        for t in [*metadata.sorted_tables, schema_version]
    )
    assert "TIMESTAMP WITH TIME ZONE" in ddl
    assert "CREATE TABLE transcript_entries" in ddl
    assert "SERIAL" in ddl
    assert 'name VARCHAR(100) COLLATE "C" NOT NULL' in ddl  # sorted bytewise, as on SQLite


async def test_argon2_runs_off_the_event_loop(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = await Store.open(StoreSettings(data_dir=tmp_path))  # default (costly) parameters
    loop = asyncio.get_running_loop()
    loop.slow_callback_duration = 0.08  # one default argon2 hash takes longer than this
    loop.set_debug(True)
    caplog.set_level(logging.WARNING, "asyncio")
    try:
        await store.customers.create("alice", "password1")
        assert await store.customers.authenticate("alice", "password1") is not None
        assert await store.customers.authenticate("bob", "password1") is None
    finally:
        loop.set_debug(False)
        await store.close()
    assert "Executing" not in caplog.text


async def test_names_sort_the_same_on_every_backend(store: Store) -> None:
    # Bytewise, as SQLite does: a PostgreSQL cluster's locale (here ICU en-US) must not matter.
    cid = await _customer(store)
    for name in ["b", "B", "a", "A", "_x", "é"]:
        await store.agents.create(cid, name=name, webhook="http://127.0.0.1:9/x")
        await store.flows.create(cid, name=name, actions=[Talk("x")])
    expected = ["A", "B", "_x", "a", "b", "é"]
    assert [a.name for a in await store.agents.list(cid)] == expected
    assert [f.name for f in await store.flows.list(cid)] == expected
    with pytest.raises(NameTaken):  # names are case-sensitive, unique per customer
        await store.agents.create(cid, name="a", webhook="http://127.0.0.1:9/x")


async def test_times_come_back_aware_utc_to_the_microsecond(store: Store) -> None:
    cid = await _customer(store)
    plus2 = timezone(timedelta(hours=2))
    started = datetime(2024, 3, 31, 1, 30, 15, 123456, tzinfo=plus2)  # a DST night in Europe
    call = await store.calls.create(cid, direction=Direction.IN, flow_id=None, started_at=started)
    got = await store.calls.get(call.id, customer_id=cid)
    assert got is not None
    assert got.started_at == started
    assert got.started_at.utcoffset() == timedelta(0)
    assert got.started_at.isoformat() == "2024-03-30T23:30:15.123456+00:00"
    with pytest.raises(StoreError):  # naive datetimes are refused, on every backend
        await store.calls.create(
            cid, direction=Direction.IN, flow_id=None, started_at=datetime(2024, 1, 1)
        )
    key = await store.keys.create(cid, expires_at=datetime.now(UTC) + timedelta(days=1))
    listed = (await store.keys.list(cid))[0]
    assert listed.expires_at == key.key.expires_at
    assert listed.created_at == key.key.created_at


async def test_text_from_the_phone_side_is_made_storable(store: Store) -> None:
    # The controller records what callers and webhooks send: NUL (refused by PostgreSQL),
    # lone surrogates (not UTF-8) and over-long values must not lose the record.
    cid = await _customer(store)
    call = await store.calls.create(
        cid, direction=Direction.IN, flow_id=None, caller="1" * 300, channel_id="c" * 100
    )
    got = await store.calls.get(call.id, customer_id=cid)
    assert got == call
    assert got.caller == "1" * 200
    entry = await store.calls.add_transcript(call.id, Role.AGENT, "a\x00b\ud800c\ud83d\ude00")
    assert entry.text == "a\ufffdb\ufffdc\U0001f600"  # a surrogate pair joins into its emoji
    assert [e.text for e in await store.calls.transcript(call.id)] == [entry.text]
    await store.calls.add_turn(call.id, turn=1, webhook_error="bad\x00reply" + "x" * 600)
    turn = (await store.calls.turns(call.id))[0]
    assert turn.webhook_error == "bad\ufffdreply" + "x" * 491
    ended = await store.calls.set_status(call.id, CallStatus.ENDED, reason="x\x00" * 150)
    assert ended is not None
    assert ended.hangup_reason == "x\ufffd" * 100


async def test_migration_is_recorded_once(settings: StoreSettings) -> None:
    for _ in range(2):
        async with (
            await Store.open(settings, password_hasher=FAST_HASHER) as store,
            store.engine.connect() as conn,
        ):
            rows = (await conn.execute(text("SELECT version FROM schema_version"))).all()
    assert [tuple(r) for r in rows] == [(v,) for v in range(1, SCHEMA_VERSION + 1)]


async def test_a_v1_database_upgrades_and_keeps_its_data(tmp_path: Path) -> None:
    # A store made before the operator tables existed (schema v1), as an earlier release left it.
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: schema_version_table(c, 1))
    await engine.dispose()
    store = await Store.open(StoreSettings(url=url), password_hasher=FAST_HASHER)
    try:
        cid = await _customer(store)
        flow = await store.flows.create(cid, name="f", actions=[Talk("x")])
        await store.numbers.assign("7001", customer_id=cid, flow_id=flow.id)
        assert await store.flows.for_call(number="7001") == flow
    finally:
        await store.close()


async def test_agents_keep_their_events_url(store: Store) -> None:
    cid = await _customer(store)
    url = "https://agent.example/events?token=x"
    agent = await store.agents.create(cid, name="a", webhook="http://127.0.0.1:9/x", events_url=url)
    assert (await store.agents.get(agent.id, customer_id=cid)) == agent
    assert agent.events_url == url
    cleared = await store.agents.update(agent.id, customer_id=cid, events_url=None)
    assert cleared is not None
    assert cleared.events_url is None


async def test_a_v2_database_gains_the_events_url_and_keeps_its_agents(
    settings: StoreSettings,
) -> None:
    # As a release before call events left it: schema v2, agents without events_url.
    engine = create_async_engine(database_url(settings))

    def v2_without_events_url(conn: Connection) -> None:
        schema_version_table(conn, 2)
        conn.exec_driver_sql("ALTER TABLE agents DROP COLUMN events_url")
        conn.exec_driver_sql(
            "INSERT INTO customers (id, name, password_hash, created_at) "
            "VALUES ('c1', 'old', 'x', '2026-01-01 00:00:00+00:00')"
        )
        conn.exec_driver_sql(
            "INSERT INTO agents (id, customer_id, name, detail, webhook, created_at, updated_at) "
            "VALUES ('a1', 'c1', 'old-agent', '', 'http://127.0.0.1:9/x', "
            "'2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00')"
        )

    async with engine.begin() as conn:
        await conn.run_sync(v2_without_events_url)
    await engine.dispose()
    async with await Store.open(settings, password_hasher=FAST_HASHER) as store:
        old = await store.agents.get("a1", customer_id="c1")
        assert old is not None
        assert (old.name, old.events_url) == ("old-agent", None)
        url = "http://127.0.0.1:9/events"
        updated = await store.agents.update("a1", customer_id="c1", events_url=url)
        assert updated is not None
        assert updated.events_url == url
        versions = await _scalar(store, "SELECT max(version) FROM schema_version")
        assert versions == SCHEMA_VERSION


async def test_a_database_before_speaking_rates_gains_the_column_and_keeps_its_agents(
    settings: StoreSettings,
) -> None:
    # As a release before speaking rates left it: its migrations ran, agents without the column.
    engine = create_async_engine(database_url(settings))
    before = schema.MIGRATIONS.index(schema._v5_agent_rate)

    def without_rate(conn: Connection) -> None:
        schema_version_table(conn, before)
        conn.exec_driver_sql("ALTER TABLE agents DROP COLUMN speaking_rate")
        conn.exec_driver_sql(
            "INSERT INTO customers (id, name, password_hash, created_at) "
            "VALUES ('c1', 'old', 'x', '2026-01-01 00:00:00+00:00')"
        )
        conn.exec_driver_sql(
            "INSERT INTO agents (id, customer_id, name, detail, webhook, voice, created_at,"
            " updated_at) VALUES ('a1', 'c1', 'old-agent', '', 'http://127.0.0.1:9/x', 'joe',"
            " '2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00')"
        )

    async with engine.begin() as conn:
        await conn.run_sync(without_rate)
    await engine.dispose()
    async with await Store.open(settings, password_hasher=FAST_HASHER) as store:
        old = await store.agents.get("a1", customer_id="c1")
        assert old is not None
        assert (old.voice, old.speaking_rate) == ("joe", None)
        updated = await store.agents.update("a1", customer_id="c1", speaking_rate=0.75)
        assert updated is not None
        assert updated.speaking_rate == 0.75
        assert await _scalar(store, "SELECT max(version) FROM schema_version") == SCHEMA_VERSION


async def test_a_database_before_recordings_gains_the_columns_and_keeps_its_calls(
    settings: StoreSettings,
) -> None:
    engine = create_async_engine(database_url(settings))
    before = schema.MIGRATIONS.index(schema._v10_call_recording)

    def without_recordings(conn: Connection) -> None:
        schema_version_table(conn, before)
        conn.exec_driver_sql("ALTER TABLE calls DROP COLUMN recording_path")
        conn.exec_driver_sql("ALTER TABLE calls DROP COLUMN recording_started_at")
        conn.exec_driver_sql(
            "INSERT INTO customers (id, name, password_hash, created_at) "
            "VALUES ('c1', 'old', 'x', '2026-01-01 00:00:00+00:00')"
        )
        conn.exec_driver_sql(
            "INSERT INTO calls (id, customer_id, direction, status, started_at) "
            "VALUES ('call1', 'c1', 'in', 'ended', '2026-01-01 00:00:00+00:00')"
        )

    async with engine.begin() as conn:
        await conn.run_sync(without_recordings)
    await engine.dispose()
    async with await Store.open(settings, password_hasher=FAST_HASHER) as store:
        old = await store.calls.get("call1", customer_id="c1")
        assert old is not None
        assert (old.recording_path, old.recording_started_at) == (None, None)
        at = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
        assert await store.calls.set_recording("call1", "/r/call1.wav", at) == "/r/call1.wav"
        recorded = await store.calls.get("call1", customer_id="c1")
        assert recorded is not None
        assert (recorded.recording_path, recorded.recording_started_at) == ("/r/call1.wav", at)
        assert await _scalar(store, "SELECT max(version) FROM schema_version") == SCHEMA_VERSION


def schema_version_table(conn: Connection, version: int) -> None:
    """Run the first ``version`` migrations only, recording them as migrate() does."""
    schema._version_metadata.create_all(conn)
    for v in range(1, version + 1):
        schema.MIGRATIONS[v - 1](conn)
        conn.execute(insert(schema_version).values(version=v, applied_at=utcnow()))


async def test_concurrent_opens_of_a_new_database_migrate_once(settings: StoreSettings) -> None:
    # The API and the controller, or two instances, may start together on an empty database.
    opened = await asyncio.gather(
        *(Store.open(settings, password_hasher=FAST_HASHER) for _ in range(4)),
        return_exceptions=True,
    )
    stores = [s for s in opened if isinstance(s, Store)]
    try:
        assert len(stores) == len(opened), [repr(e) for e in opened if not isinstance(e, Store)]
        cid = await _customer(stores[0])
        assert await stores[3].customers.get(cid) is not None
        async with stores[1].engine.connect() as conn:
            versions = (await conn.execute(text("SELECT version FROM schema_version"))).all()
        assert [tuple(v) for v in versions] == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
    finally:
        for s in stores:
            await s.close()
