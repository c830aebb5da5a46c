"""The store on a real SQLite file: accounts, scoping, flows resolution, call records."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.schema import CreateTable

from ari_offload.config import StoreSettings
from ari_offload.errors import StoreError
from ari_offload.flows.model import AiTalk, Talk, ValidationError
from ari_offload.store import (
    AgentInUse,
    CallStatus,
    Direction,
    NameTaken,
    Role,
    Store,
    database_url,
)
from ari_offload.store.schema import SCHEMA_VERSION, metadata, schema_version
from tests.api_support import FAST_HASHER


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(StoreSettings(data_dir=tmp_path), password_hasher=FAST_HASHER)
    yield s
    await s.close()


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
    assert versions == [(SCHEMA_VERSION,)]


async def test_unusable_url_is_a_store_error() -> None:
    with pytest.raises(StoreError):
        await Store.open(StoreSettings(url="nosuchdb+driver://x/y"))


async def test_passwords_are_argon2_hashes_and_checked(store: Store, tmp_path: Path) -> None:
    customer = await store.customers.create("alice", "password1")
    with pytest.raises(NameTaken):
        await store.customers.create("alice", "another-pw")
    assert await store.customers.authenticate("alice", "password1") == customer
    assert await store.customers.authenticate("alice", "password2") is None
    assert await store.customers.authenticate("nobody", "password1") is None
    stored = (
        sqlite3.connect(tmp_path / "ari-offload.db")
        .execute("SELECT password_hash FROM customers")
        .fetchone()[0]
    )
    assert stored.startswith("$argon2id$")
    assert "password1" not in stored


async def test_access_keys_store_only_a_hash(store: Store, tmp_path: Path) -> None:
    cid = await _customer(store)
    new = await store.keys.create(cid, name="ci")
    assert "token" not in repr(new)
    row = (
        sqlite3.connect(tmp_path / "ari-offload.db")
        .execute("SELECT token_hash FROM access_keys")
        .fetchone()
    )
    assert row[0] == hashlib.sha256(new.token.encode()).hexdigest()
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


async def test_resolve_by_id_or_unique_name(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    alice, bob = await _customer(store), await _customer(store, "bob")
    a = await store.flows.create(alice, name="support", actions=[Talk("a")])
    assert await store.flows.resolve("support") == a
    assert await store.flows.resolve(a.id) == a
    b = await store.flows.create(bob, name="support", actions=[Talk("b")])
    caplog.set_level(logging.WARNING, "ari_offload.store")
    assert await store.flows.resolve("support") is None
    assert "ambiguous" in caplog.text
    assert await store.flows.resolve(b.id) == b  # ids are never ambiguous
    assert await store.flows.resolve("nope") is None
    assert "no flow has this id or name" in caplog.text


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
    # PostgreSQL is not run here; its DDL at least must compile from the same tables.
    dialect = make_url("postgresql+asyncpg://").get_dialect()()  # asyncpg itself not needed
    ddl = "\n".join(
        str(CreateTable(t).compile(dialect=dialect))
        for t in [*metadata.sorted_tables, schema_version]
    )
    assert "TIMESTAMP WITH TIME ZONE" in ddl
    assert "CREATE TABLE transcript_entries" in ddl
    assert "SERIAL" in ddl


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
