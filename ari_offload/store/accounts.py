"""Customers (argon2id password hashes) and their access keys (SHA-256 of the token only)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from ari_offload.errors import KeyLimitReached, NameTaken
from ari_offload.store import schema as t
from ari_offload.store._db import Repo, new_id, utcnow
from ari_offload.store.passwords import PasswordPool
from ari_offload.store.records import AccessKey, Customer, NewAccessKey

log = logging.getLogger("ari_offload.store")

TOKEN_PREFIX = "ak_"  # noqa: S105 (a marker for secret scanners, not a secret)
MAX_TOKEN_LENGTH = 128
# last_used_at is a hint, not an audit log: write it at most this often per key.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Customers(Repo):
    """Passwords are hashed on ``passwords``, a pool of their own; ``Busy`` when it is full."""

    def __init__(self, engine: AsyncEngine, passwords: PasswordPool) -> None:
        super().__init__(engine)
        self.passwords = passwords
        self._dummy_hash: str | None = None
        self._dummy_lock = asyncio.Lock()  # a burst of unknown names makes one dummy, not many

    async def create(self, name: str, password: str) -> Customer:
        """Raises ``NameTaken`` if the name is used."""
        pw_hash = await self.passwords.hash(password)
        customer = Customer(id=new_id(), name=name, created_at=utcnow())
        try:
            async with self._tx() as conn:
                await conn.execute(
                    insert(t.customers).values(
                        id=customer.id,
                        name=name,
                        password_hash=pw_hash,
                        created_at=customer.created_at,
                    )
                )
        except IntegrityError:
            raise NameTaken("customer", name) from None
        log.info("customer %s created", customer.id)
        return customer

    async def get(self, customer_id: str) -> Customer | None:
        async with self._tx() as conn:
            row = (
                (await conn.execute(select(t.customers).where(t.customers.c.id == customer_id)))
                .mappings()
                .first()
            )
        return _customer(row) if row else None

    async def authenticate(self, name: str, password: str) -> Customer | None:
        """The customer if the password matches; None for a wrong name or password alike."""
        async with self._tx() as conn:
            row = (
                (await conn.execute(select(t.customers).where(t.customers.c.name == name)))
                .mappings()
                .first()
            )
        if row is None:
            # Same work as a real check, so response time does not reveal which names exist.
            await self.passwords.verify(await self._dummy(), password)
            return None
        if not await self.passwords.verify(row["password_hash"], password):
            return None
        if self.passwords.needs_rehash(row["password_hash"]):
            new_hash = await self.passwords.hash(password)
            async with self._tx() as conn:
                await conn.execute(
                    update(t.customers)
                    .where(t.customers.c.id == row["id"])
                    .values(password_hash=new_hash)
                )
        return _customer(row)

    async def _dummy(self) -> str:
        async with self._dummy_lock:
            if self._dummy_hash is None:
                self._dummy_hash = await self.passwords.hash(secrets.token_hex(16))
            return self._dummy_hash


class AccessKeys(Repo):
    async def create(
        self,
        customer_id: str,
        *,
        name: str = "",
        expires_at: datetime | None = None,
        max_live: int | None = None,
    ) -> NewAccessKey:
        """A new key; the returned token is shown once and cannot be recovered later.

        With ``max_live``, raises ``KeyLimitReached`` if the customer already has that many
        live keys (two creations racing may both pass: the cap bounds growth, not exactly).
        """
        if max_live is not None and await self.count_live(customer_id) >= max_live:
            raise KeyLimitReached(max_live)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        key = AccessKey(
            id=new_id(),
            customer_id=customer_id,
            name=name,
            created_at=utcnow(),
            expires_at=expires_at,
            revoked_at=None,
            last_used_at=None,
        )
        async with self._tx() as conn:
            await conn.execute(
                insert(t.access_keys).values(
                    id=key.id,
                    customer_id=customer_id,
                    name=name,
                    token_hash=hash_token(token),
                    created_at=key.created_at,
                    expires_at=expires_at,
                )
            )
        log.info("access key %s created for customer %s", key.id, customer_id)
        return NewAccessKey(key=key, token=token)

    async def count_live(self, customer_id: str) -> int:
        """Keys neither revoked nor expired."""
        c = t.access_keys.c
        query = select(func.count()).where(
            c.customer_id == customer_id,
            c.revoked_at.is_(None),
            or_(c.expires_at.is_(None), c.expires_at > utcnow()),
        )
        async with self._tx() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def oldest_live(self, customer_id: str, *, names: tuple[str, ...]) -> AccessKey | None:
        """The customer's oldest live key among those named ``names`` (session keys)."""
        c = t.access_keys.c
        query = (
            select(t.access_keys)
            .where(
                c.customer_id == customer_id,
                c.name.in_(names),
                c.revoked_at.is_(None),
                or_(c.expires_at.is_(None), c.expires_at > utcnow()),
            )
            .order_by(c.created_at, c.id)
            .limit(1)
        )
        async with self._tx() as conn:
            row = (await conn.execute(query)).mappings().first()
        return _key(row) if row else None

    async def list(self, customer_id: str) -> list[AccessKey]:
        async with self._tx() as conn:
            rows = (
                (
                    await conn.execute(
                        select(t.access_keys)
                        .where(t.access_keys.c.customer_id == customer_id)
                        .order_by(t.access_keys.c.created_at, t.access_keys.c.id)
                    )
                )
                .mappings()
                .all()
            )
        return [_key(r) for r in rows]

    async def revoke(self, key_id: str, *, customer_id: str) -> AccessKey | None:
        """Revoke one of the customer's keys (idempotent); None if it is not theirs."""
        c = t.access_keys.c
        async with self._tx() as conn:
            row = (
                (
                    await conn.execute(
                        select(t.access_keys).where(c.id == key_id, c.customer_id == customer_id)
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                return None
            key = _key(row)
            if key.revoked_at is None:
                key = replace(key, revoked_at=utcnow())
                await conn.execute(
                    update(t.access_keys).where(c.id == key_id).values(revoked_at=key.revoked_at)
                )
        log.info("access key %s revoked", key_id)
        return key

    async def authenticate(self, token: str) -> AccessKey | None:
        """The key a token belongs to, if it exists, is not revoked and has not expired."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        c = t.access_keys.c
        async with self._tx() as conn:
            row = (
                (await conn.execute(select(t.access_keys).where(c.token_hash == hash_token(token))))
                .mappings()
                .first()
            )
            if row is None:
                return None
            key = _key(row)
            now = utcnow()
            if not key.is_usable(now):
                return None
            if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
                await conn.execute(
                    update(t.access_keys).where(c.id == key.id).values(last_used_at=now)
                )
        return key


def _customer(row: Any) -> Customer:
    return Customer(id=row["id"], name=row["name"], created_at=row["created_at"])


def _key(row: Any) -> AccessKey:
    return AccessKey(
        id=row["id"],
        customer_id=row["customer_id"],
        name=row["name"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
    )
