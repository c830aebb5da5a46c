"""The ``Store`` facade: one engine, one repository per resource, schema migrated on open."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.util import await_only

from ari_offload.config import StoreSettings
from ari_offload.errors import StoreError
from ari_offload.store.accounts import AccessKeys, Customers
from ari_offload.store.admissions import Admissions
from ari_offload.store.calls import Calls
from ari_offload.store.nodes import Nodes
from ari_offload.store.operator import AdminKeys, Numbers, Tenants
from ari_offload.store.passwords import PasswordPool
from ari_offload.store.resources import Agents, Flows
from ari_offload.store.schema import migrate

log = logging.getLogger("ari_offload.store")

SQLITE_FILE = "ari-offload.db"
SQLITE_BUSY_TIMEOUT_S = 15.0
# argon2id at the library's time and memory costs (3 passes over 64 MiB), but one lane: the
# library's default of 4 runs 4 threads per hash, which would defeat the one-thread password
# pool and take every core from speech. Older hashes are upgraded at their next login.
PASSWORD_PARALLELISM = 1


def default_password_hasher() -> PasswordHasher:
    return PasswordHasher(parallelism=PASSWORD_PARALLELISM)


def database_url(settings: StoreSettings) -> str:
    """The configured URL, or SQLite in ``data_dir`` (created if missing)."""
    if settings.url:
        return settings.url
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = Path(settings.data_dir, SQLITE_FILE).resolve()
    _private_file(path)
    return f"sqlite+aiosqlite:///{path}"


def _private_file(path: Path) -> None:
    """Create the database file 0600 (it holds password hashes and webhook secrets).

    SQLite gives the -wal and -shm files it creates the database file's mode, so those follow;
    files an older version left readable by others are tightened.
    """
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = file.stat().st_mode
        except FileNotFoundError:
            continue
        if mode & 0o077:
            log.info("store: making %s private (mode 0600)", file.name)
            file.chmod(0o600)


class Store:
    """Persistence for the API and the call controller.

    ``store.customers``, ``store.keys``, ``store.agents``, ``store.flows``, ``store.calls``
    (``store.admissions``: calls admitted under the quotas);
    what the operator owns: ``store.numbers``, ``store.tenants``, ``store.admin_keys``;
    the cluster's node registry: ``store.nodes``.
    Open with ``await Store.open(settings)`` (or ``async with await Store.open(...)``).
    """

    def __init__(self, engine: AsyncEngine, *, password_hasher: PasswordHasher | None = None):
        self.engine = engine
        self.customers = Customers(
            engine, PasswordPool(password_hasher or default_password_hasher())
        )
        self.keys = AccessKeys(engine)
        self.agents = Agents(engine)
        self.flows = Flows(engine)
        self.calls = Calls(engine)
        self.admissions = Admissions(engine)  # calls admitted under the quotas
        self.numbers = Numbers(engine)
        self.tenants = Tenants(engine)
        self.admin_keys = AdminKeys(engine)
        self.nodes = Nodes(engine)  # the cluster's node registry

    @classmethod
    async def open(
        cls, settings: StoreSettings, *, password_hasher: PasswordHasher | None = None
    ) -> Store:
        """Connect and migrate; raises ``StoreError`` if the database is unusable."""
        url = database_url(settings)
        try:
            parsed = make_url(url)
            engine = _engine(url, parsed.get_backend_name())
        except (ArgumentError, ImportError, ValueError) as exc:
            raise StoreError(f"store URL not usable: {exc}") from None
        try:
            async with engine.begin() as conn:
                version = await conn.run_sync(migrate)
        except (SQLAlchemyError, OSError) as exc:
            await engine.dispose()
            raise StoreError(
                f"cannot open the store ({parsed.get_backend_name()}): {type(exc).__name__}"
            ) from exc
        # Password and query are hidden: the URL may carry credentials.
        log.info(
            "store open: %s, schema v%d",
            parsed.render_as_string(hide_password=True).split("?")[0],
            version,
        )
        return cls(engine, password_hasher=password_hasher)

    async def close(self) -> None:
        await self.customers.passwords.close()
        await self.engine.dispose()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _engine(url: str, backend: str) -> AsyncEngine:
    # aiosqlite logs every statement's parameters at DEBUG, agent secrets included: keep it
    # quiet unless an operator configured that logger on purpose.
    quiet = logging.getLogger("aiosqlite")
    if quiet.level == logging.NOTSET:
        quiet.setLevel(logging.INFO)
    if backend != "sqlite":
        return create_async_engine(url, pool_pre_ping=True)
    engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
        # Foreign keys are off by default in SQLite; WAL lets readers run beside a writer.
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        _enable_wal(cursor)
        cursor.close()

    return engine


def _enable_wal(cursor: Any) -> None:
    """Switch a database to WAL once (the mode is stored in the file).

    SQLite answers "database is locked" at once, without using the busy timeout, when two
    connections switch a new database to WAL together (two processes starting at once):
    retry for up to the busy timeout instead of failing the start.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            if str(cursor.fetchone()[0]).lower() == "wal":
                return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        await_only(asyncio.sleep(0.02))  # runs in SQLAlchemy's greenlet: yields to the loop
