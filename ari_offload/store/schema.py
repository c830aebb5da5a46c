"""Tables and the versioned migration that creates them.

Only portable types (String, Text, Integer, Float, JSON, timestamps normalised to UTC), so the
same code runs on SQLite and PostgreSQL. Strings compare and sort bytewise on both (``varchar``).
A migration is a function appended to ``MIGRATIONS``; ``schema_version`` records which ones ran.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    Connection,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy import func as sql_func

log = logging.getLogger("ari_offload.store")

ID = 64  # length of id columns: our ids are UUIDs (36), the controller may bring its own
# Serialises migrations across processes on PostgreSQL (pg_advisory_xact_lock): "ari-offl".
MIGRATION_LOCK = 0x6172692D6F66666C


def varchar(length: int) -> String:
    """VARCHAR(length), bytewise like SQLite's BINARY collation on every backend.

    PostgreSQL would otherwise compare and sort in the cluster's locale (en_US puts "a" before
    "B", SQLite puts it after): ``COLLATE "C"`` keeps list order the same everywhere.
    """
    return String(length).with_variant(String(length, collation="C"), "postgresql")


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out; SQLite drops the zone, so it is put back on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: the store only takes aware datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if not isinstance(value, datetime):
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()


def child_of(name: str, parent: str) -> Column[str]:
    """A required, indexed reference whose rows go when the parent row goes."""
    return Column(name, varchar(ID), ForeignKey(parent, ondelete="CASCADE"), nullable=False,
                  index=True)  # fmt: skip


customers = Table(
    "customers",
    metadata,
    Column("id", varchar(ID), primary_key=True),
    Column("name", varchar(64), nullable=False, unique=True),
    Column("password_hash", varchar(255), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

access_keys = Table(
    "access_keys",
    metadata,
    Column("id", varchar(ID), primary_key=True),
    child_of("customer_id", "customers.id"),  # every resource belongs to one customer
    Column("name", varchar(100), nullable=False),
    Column("token_hash", varchar(64), nullable=False, unique=True),  # sha256 hex
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime),
    Column("revoked_at", UtcDateTime),
    Column("last_used_at", UtcDateTime),
)

agents = Table(
    "agents",
    metadata,
    Column("id", varchar(ID), primary_key=True),
    child_of("customer_id", "customers.id"),  # every resource belongs to one customer
    Column("name", varchar(100), nullable=False),
    Column("detail", Text, nullable=False),
    Column("webhook", varchar(2048), nullable=False),
    Column("secret", varchar(256)),
    Column("voice", varchar(100)),
    Column("language", varchar(16)),
    Column("events_url", varchar(2048)),  # added by migration 3
    Column("speaking_rate", Float),  # added by migration _v5_agent_rate
    # Added by migration _v7_llm_agents. kind: "webhook" or "llm"; NULL: "webhook" (a row a
    # node of an older version wrote during a rolling upgrade). An llm agent's webhook is "".
    Column("kind", varchar(16)),
    Column("base_url", varchar(2048)),
    Column("model", varchar(200)),
    Column("system_prompt", Text),
    Column("api_key", varchar(512)),  # a secret, like ``secret``: never returned by the API
    Column("temperature", Float),
    Column("max_tokens", Integer),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("customer_id", "name", name="uq_agents_customer_name"),
)

flows = Table(
    "flows",
    metadata,
    Column("id", varchar(ID), primary_key=True),
    child_of("customer_id", "customers.id"),  # every resource belongs to one customer
    Column("name", varchar(64), nullable=False, index=True),  # the dialplan finds flows by name
    Column("actions", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("customer_id", "name", name="uq_flows_customer_name"),
)

calls = Table(
    "calls",
    metadata,
    Column("id", varchar(ID), primary_key=True),
    Column(
        "customer_id", varchar(ID), ForeignKey("customers.id", ondelete="CASCADE"), nullable=False
    ),
    # A call record outlives its flow: deleting the flow keeps the history.
    Column("flow_id", varchar(ID), ForeignKey("flows.id", ondelete="SET NULL")),
    Column("direction", varchar(3), nullable=False),
    Column("status", varchar(8), nullable=False),
    Column("caller", varchar(200)),
    Column("destination", varchar(200)),
    Column("channel_id", varchar(128), index=True),
    Column("started_at", UtcDateTime, nullable=False),
    Column("answered_at", UtcDateTime),
    Column("ended_at", UtcDateTime),
    Column("hangup_reason", varchar(200)),
    # "human" or "machine": answering-machine detection's verdict (flows' detect_machine);
    # added by migration _v6_answered_by
    Column("answered_by", varchar(8)),
    # What the call was placed with, for its flow's say_message (POST /calls "message");
    # added by migration _v8_call_message
    Column("message", Text),
    # The cluster node whose controller runs the call (None: a single node); added by
    # migration _v9_cluster_nodes.
    Column("node_id", varchar(ID)),
    # When the call passed the quotas (store/admissions.py); None: not (yet) admitted, and
    # not counted. Added by migration _v9_cluster_nodes.
    Column("admitted_at", UtcDateTime),
    # The call's recording on the disk of the node that recorded it (added by migration
    # _v10_call_recording); NULL: not recorded.
    Column("recording_path", varchar(1024)),
    Column("recording_started_at", UtcDateTime),
    CheckConstraint("direction IN ('in', 'out')", name="ck_calls_direction"),
    CheckConstraint("status IN ('ringing', 'active', 'ended', 'failed')", name="ck_calls_status"),
    Index("ix_calls_customer_started", "customer_id", "started_at"),
    Index("ix_calls_status", "status"),
)

transcript_entries = Table(
    "transcript_entries",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    child_of("call_id", "calls.id"),
    Column("role", varchar(8), nullable=False),
    Column("text", Text, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    CheckConstraint("role IN ('caller', 'agent', 'system')", name="ck_transcript_role"),
)

turns = Table(
    "turns",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    child_of("call_id", "calls.id"),
    Column("turn", Integer, nullable=False),
    # turn_fields.STORED_FIELDS as migration 1 created them: a new field needs a migration
    # (tests/unit/test_turn_fields.py fails until the columns match the declaration).
    Column("endpoint_ms", Float),
    Column("stt_ms", Float),
    Column("webhook_ms", Float),
    Column("tts_first_audio_ms", Float),
    Column("total_ms", Float),
    Column("webhook_error", varchar(500)),
    Column("at", UtcDateTime, nullable=False),
    UniqueConstraint("call_id", "turn", name="uq_turns_call_turn"),
)

# The tables of migration 1. It creates them as declared now, so a column added later (marked
# "added by migration N") is there in a new database; migration N adds it where missing.
V1_TABLES = (customers, access_keys, agents, flows, calls, transcript_entries, turns)

# --- v2: what the operator owns ------------------------------------------------------------

# Inbound numbers (the dialled extension or DID) assigned to a tenant's flow by the operator.
numbers = Table(
    "numbers",
    metadata,
    Column("number", varchar(32), primary_key=True),
    Column(
        "customer_id",
        varchar(ID),
        ForeignKey("customers.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    # Deleting the flow keeps the number the tenant's: calls get the apology until re-pointed.
    Column("flow_id", varchar(ID), ForeignKey("flows.id", ondelete="SET NULL")),
    Column("created_at", UtcDateTime, nullable=False),
)

# The operator's per-tenant overrides of the policy's [tenant] values; NULL keeps the policy's.
tenant_rules = Table(
    "tenant_rules",
    metadata,
    Column(
        "customer_id", varchar(ID), ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("routes", JSON),
    Column("caller_ids", JSON),
    Column("concurrent_calls", Integer),
    Column("calls_per_minute", Integer),
    Column("max_call_duration_s", Integer),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Operator (admin) credentials: separate from tenants' access keys, SHA-256 of the token only.
admin_keys = Table(
    "admin_keys",
    metadata,
    Column("id", varchar(ID), primary_key=True),
    Column("name", varchar(100), nullable=False),
    Column("token_hash", varchar(64), nullable=False, unique=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
)


# The server-wide calls-per-minute quota counts every customer's calls since a moment.
ix_calls_started = Index("ix_calls_started", calls.c.started_at)


def _v2_operator(conn: Connection) -> None:
    metadata.create_all(conn, tables=[numbers, tenant_rules, admin_keys])
    ix_calls_started.create(conn, checkfirst=True)  # new databases got it with the table


# --- v3: call events -----------------------------------------------------------------------


def _add_missing_column(conn: Connection, table: Table, name: str) -> None:
    """``ALTER TABLE ... ADD COLUMN`` (nullable, as declared) unless the column is there."""
    if name in {c["name"] for c in inspect(conn).get_columns(table.name)}:
        return  # a database migration 1 made with the column already
    column = table.c[name]
    assert column.nullable, "an added column must be nullable: old rows have no value"
    kind = column.type.compile(dialect=conn.dialect)
    conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {name} {kind}")


def _v3_agent_events(conn: Connection) -> None:
    _add_missing_column(conn, agents, "events_url")


def _v5_agent_rate(conn: Connection) -> None:
    _add_missing_column(conn, agents, "speaking_rate")


def _v6_answered_by(conn: Connection) -> None:
    _add_missing_column(conn, calls, "answered_by")


LLM_AGENT_COLUMNS = (
    "kind", "base_url", "model", "system_prompt", "api_key", "temperature", "max_tokens"
)  # fmt: skip


def _v7_llm_agents(conn: Connection) -> None:
    for name in LLM_AGENT_COLUMNS:
        _add_missing_column(conn, agents, name)


def _v8_call_message(conn: Connection) -> None:
    _add_missing_column(conn, calls, "message")


# --- cluster: the node registry and each call's node ----------------------------------------

# One row per ari-offload node (cluster.py): written by its own heartbeat, read by the others
# to find a call's node, to place outbound calls and to close the calls of a node that is gone.
cluster_nodes = Table(
    "cluster_nodes",
    metadata,
    Column("id", varchar(ID), primary_key=True),
    Column("api_url", varchar(2048), nullable=False),  # where the other nodes reach its API
    Column("asterisk", varchar(200), nullable=False),  # the Asterisk it controls (a label)
    Column("started_at", UtcDateTime, nullable=False),
    Column("last_seen", UtcDateTime, nullable=False),
    Column("load", Integer, nullable=False),  # calls in progress at the last heartbeat
    Column("ari_connected", Boolean, nullable=False),
    Column("down_since", UtcDateTime),  # when its ARI connection was lost (None: connected)
)
ix_calls_node = Index("ix_calls_node_status", calls.c.node_id, calls.c.status)


def _v9_cluster_nodes(conn: Connection) -> None:
    _add_missing_column(conn, calls, "node_id")
    _add_missing_column(conn, calls, "admitted_at")
    # Every call recorded so far counted against the quotas, but those the quotas refused.
    c = calls.c
    refused = c.hangup_reason.is_not(None) & c.hangup_reason.like("quota:%")
    conn.execute(update(calls).where(~refused).values(admitted_at=c.started_at))
    ix_calls_node.create(conn, checkfirst=True)  # new databases got it with the table
    metadata.create_all(conn, tables=[cluster_nodes])


def _v10_call_recording(conn: Connection) -> None:
    _add_missing_column(conn, calls, "recording_path")
    _add_missing_column(conn, calls, "recording_started_at")


# Kept outside ``metadata`` so that migration 1 can create exactly the tables above.
_version_metadata = MetaData()
schema_version = Table(
    "schema_version",
    _version_metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", UtcDateTime, nullable=False),
)


# v1 got COLLATE "C" on PostgreSQL before any PostgreSQL store existed; SQLite's DDL is as it was.
def _v1_initial(conn: Connection) -> None:
    metadata.create_all(conn, tables=list(V1_TABLES))


# Append, never edit: a database at version N runs MIGRATIONS[N:].
MIGRATIONS: list[Callable[[Connection], None]] = [
    _v1_initial,
    _v2_operator,
    _v3_agent_events,
    _v5_agent_rate,
    _v6_answered_by,
    _v7_llm_agents,
    _v8_call_message,
    _v9_cluster_nodes,
    _v10_call_recording,
]
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: Connection) -> int:
    """Bring the schema up to date inside the caller's transaction; returns the version.

    Processes that start together on a new database take turns: the first migrates, the
    others then find the schema current.
    """
    _lock_for_migration(conn)
    _version_metadata.create_all(conn)
    current = conn.execute(select(sql_func.max(schema_version.c.version))).scalar() or 0
    if current > SCHEMA_VERSION:
        log.warning("database schema v%d is newer than this code (v%d)", current, SCHEMA_VERSION)
        return int(current)
    for version in range(current + 1, SCHEMA_VERSION + 1):
        log.info("store: applying schema migration v%d", version)
        MIGRATIONS[version - 1](conn)
        conn.execute(insert(schema_version).values(version=version, applied_at=datetime.now(UTC)))
    return SCHEMA_VERSION


def _lock_for_migration(conn: Connection) -> None:
    """Hold the database's migration lock until the caller's transaction ends."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(sql_func.pg_advisory_xact_lock(MIGRATION_LOCK)))
    elif conn.dialect.name == "sqlite":
        # The driver leaves DDL outside any transaction: take the write lock first, which also
        # makes the migration all-or-nothing. Waits for the busy timeout if another has it.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
