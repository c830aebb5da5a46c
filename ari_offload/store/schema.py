"""Tables and the versioned migration that creates them.

Only portable types (String, Text, Integer, Float, JSON, timestamps normalised to UTC), so the
same code runs on SQLite and PostgreSQL. A migration is a function appended to ``MIGRATIONS``;
``schema_version`` records which ones ran.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
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
    select,
)
from sqlalchemy import func as sql_func

log = logging.getLogger("ari_offload.store")

ID = 64  # length of id columns: our ids are UUIDs (36), the controller may bring its own


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

customers = Table(
    "customers",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

access_keys = Table(
    "access_keys",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column(
        "customer_id",
        String(ID),
        ForeignKey("customers.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("name", String(100), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 hex
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime),
    Column("revoked_at", UtcDateTime),
    Column("last_used_at", UtcDateTime),
)

agents = Table(
    "agents",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column(
        "customer_id",
        String(ID),
        ForeignKey("customers.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("name", String(100), nullable=False),
    Column("detail", Text, nullable=False),
    Column("webhook", String(2048), nullable=False),
    Column("secret", String(256)),
    Column("voice", String(100)),
    Column("language", String(16)),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("customer_id", "name", name="uq_agents_customer_name"),
)

flows = Table(
    "flows",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column(
        "customer_id",
        String(ID),
        ForeignKey("customers.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("name", String(64), nullable=False, index=True),  # the dialplan finds flows by name
    Column("actions", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("customer_id", "name", name="uq_flows_customer_name"),
)

calls = Table(
    "calls",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column(
        "customer_id", String(ID), ForeignKey("customers.id", ondelete="CASCADE"), nullable=False
    ),
    # A call record outlives its flow: deleting the flow keeps the history.
    Column("flow_id", String(ID), ForeignKey("flows.id", ondelete="SET NULL")),
    Column("direction", String(3), nullable=False),
    Column("status", String(8), nullable=False),
    Column("caller", String(200)),
    Column("destination", String(200)),
    Column("channel_id", String(128), index=True),
    Column("started_at", UtcDateTime, nullable=False),
    Column("answered_at", UtcDateTime),
    Column("ended_at", UtcDateTime),
    Column("hangup_reason", String(200)),
    CheckConstraint("direction IN ('in', 'out')", name="ck_calls_direction"),
    CheckConstraint("status IN ('ringing', 'active', 'ended', 'failed')", name="ck_calls_status"),
    Index("ix_calls_customer_started", "customer_id", "started_at"),
    Index("ix_calls_status", "status"),
)

transcript_entries = Table(
    "transcript_entries",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column(
        "call_id",
        String(ID),
        ForeignKey("calls.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("role", String(8), nullable=False),
    Column("text", Text, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    CheckConstraint("role IN ('caller', 'agent', 'system')", name="ck_transcript_role"),
)

turns = Table(
    "turns",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "call_id",
        String(ID),
        ForeignKey("calls.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("turn", Integer, nullable=False),
    Column("endpoint_ms", Float),
    Column("stt_ms", Float),
    Column("webhook_ms", Float),
    Column("tts_first_audio_ms", Float),
    Column("total_ms", Float),
    Column("webhook_error", String(500)),
    Column("at", UtcDateTime, nullable=False),
    UniqueConstraint("call_id", "turn", name="uq_turns_call_turn"),
)

# Kept outside ``metadata`` so that migration 1 can create exactly the tables above.
_version_metadata = MetaData()
schema_version = Table(
    "schema_version",
    _version_metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", UtcDateTime, nullable=False),
)


def _v1_initial(conn: Connection) -> None:
    metadata.create_all(conn)


# Append, never edit: a database at version N runs MIGRATIONS[N:].
MIGRATIONS: list[Callable[[Connection], None]] = [_v1_initial]
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: Connection) -> int:
    """Bring the schema up to date inside the caller's transaction; returns the version."""
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
