"""Helpers shared by the repositories: ids, clock, storable text, database errors as
``StoreError``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ari_offload.errors import StoreError


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


def storable(value: str, max_length: int | None = None) -> str:
    """Text from the phone side made fit for every backend, cut to ``max_length`` characters.

    NUL (PostgreSQL refuses it) and lone surrogates (not UTF-8) become U+FFFD; PostgreSQL also
    refuses a value longer than its column, where SQLite would keep it.
    """
    if max_length is not None:
        value = value[:max_length]
    value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # Pairs of surrogates join into their character; lone ones are replaced.
        value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


class Repo:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncConnection]:
        """One transaction; driver errors surface as ``StoreError`` (IntegrityError kept)."""
        try:
            async with self._engine.begin() as conn:
                yield conn
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            # The SQL text may carry values; keep only the class name in the message.
            raise StoreError(f"database error: {type(exc).__name__}") from exc
