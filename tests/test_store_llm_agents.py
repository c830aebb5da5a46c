"""Agents of kind "llm" in the store, on a real SQLite file and a real PostgreSQL: kept whole,
changed, and a database from before them gains the columns with its agents kept as webhooks."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from ari_offload.agent.llm_chat import LlmConfig
from ari_offload.config import StoreSettings
from ari_offload.store import Store, database_url, schema
from ari_offload.store.schema import SCHEMA_VERSION
from tests.api_support import FAST_HASHER
from tests.test_store import _customer, _scalar, schema_version_table, settings, store

__all__ = ["settings", "store"]  # fixtures, for every test here on both backends

KEY = "sk-stored-never-shown-0123"


async def test_an_llm_agent_is_kept_whole_and_its_key_stays_out_of_reprs(store: Store) -> None:
    cid = await _customer(store)
    agent = await store.agents.create(
        cid, name="llm", kind="llm", base_url="https://llm.example/v1", model="gpt-4o-mini",
        system_prompt="Be brief.", api_key=KEY, temperature=0.5, max_tokens=300,
    )  # fmt: skip
    got = await store.agents.get(agent.id, customer_id=cid)
    assert got == agent
    assert got.webhook is None
    # The column is NOT NULL since migration 1: an llm agent's webhook is stored as "".
    assert await _scalar(store, "SELECT webhook FROM agents WHERE name = 'llm'") == ""
    assert got.llm == LlmConfig("https://llm.example/v1", "gpt-4o-mini", "Be brief.", KEY, 0.5, 300)
    assert KEY not in repr(got)
    assert KEY not in repr(got.llm)
    changed = await store.agents.update(
        agent.id, customer_id=cid, model="llama3.1:8b", api_key=None, max_tokens=None
    )
    assert changed is not None
    assert (changed.model, changed.api_key, changed.max_tokens) == ("llama3.1:8b", None, None)
    bare = await store.agents.create(
        cid, name="bare", kind="llm", base_url="http://127.0.0.1:8000/v1", model="m"
    )
    assert (bare.system_prompt, bare.llm) == ("", LlmConfig("http://127.0.0.1:8000/v1", "m"))


async def test_a_webhook_agent_has_no_llm_and_a_kind_needs_its_fields(store: Store) -> None:
    cid = await _customer(store)
    hook = await store.agents.create(cid, name="hook", webhook="http://127.0.0.1:9/x")
    assert (hook.kind, hook.llm) == ("webhook", None)
    assert (await store.agents.get(hook.id, customer_id=cid)) == hook
    for wrong in [
        {"kind": "llm", "base_url": "http://h/v1"},  # no model
        {"kind": "llm", "base_url": "http://h/v1", "model": "m", "webhook": "http://h/x"},
        {"kind": "webhook"},  # no webhook
        {"kind": "sip", "webhook": "http://h/x"},
    ]:
        with pytest.raises(ValueError, match="has a webhook, or a base_url and a model"):
            await store.agents.create(cid, name="wrong", **wrong)  # type: ignore[arg-type]


async def test_a_database_before_llm_agents_gains_the_columns_and_keeps_its_agents(
    settings: StoreSettings,
) -> None:
    # As a release before the llm kind left it: its migrations ran, agents without the columns.
    engine = create_async_engine(database_url(settings))
    before = schema.MIGRATIONS.index(schema._v7_llm_agents)

    def without_llm(conn: Connection) -> None:
        schema_version_table(conn, before)
        for name in schema.LLM_AGENT_COLUMNS:
            conn.exec_driver_sql(f"ALTER TABLE agents DROP COLUMN {name}")
        conn.exec_driver_sql(
            "INSERT INTO customers (id, name, password_hash, created_at) "
            "VALUES ('c1', 'old', 'x', '2026-01-01 00:00:00+00:00')"
        )
        conn.exec_driver_sql(
            "INSERT INTO agents (id, customer_id, name, detail, webhook, created_at, updated_at)"
            " VALUES ('a1', 'c1', 'old-agent', '', 'http://127.0.0.1:9/x',"
            " '2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00')"
        )

    async with engine.begin() as conn:
        await conn.run_sync(without_llm)
    await engine.dispose()
    async with await Store.open(settings, password_hasher=FAST_HASHER) as store:
        old = await store.agents.get("a1", customer_id="c1")
        assert old is not None
        assert (old.kind, old.webhook, old.llm) == ("webhook", "http://127.0.0.1:9/x", None)
        new = await store.agents.create(
            "c1", name="llm", kind="llm", base_url="https://llm.example/v1", model="m",
            api_key=KEY,
        )  # fmt: skip
        assert await store.agents.get(new.id, customer_id="c1") == new
        assert await _scalar(store, "SELECT max(version) FROM schema_version") == SCHEMA_VERSION
