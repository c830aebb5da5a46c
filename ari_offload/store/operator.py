"""What the operator owns in the store: inbound numbers, per-tenant rules, admin keys.

Tenants never write here: only the admin API and ``ari-offload admin`` do. A number belongs to
exactly one tenant and points at one of that tenant's flows; the dialplan passes the dialled
number and nothing resolves a name across tenants.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ari_offload.errors import NameTaken
from ari_offload.policy import TenantOverrides
from ari_offload.store import schema as t
from ari_offload.store._db import Repo, new_id, utcnow
from ari_offload.store.accounts import MAX_TOKEN_LENGTH, hash_token
from ari_offload.store.records import Customer

log = logging.getLogger("ari_offload.store")

ADMIN_TOKEN_PREFIX = "adm_"  # noqa: S105 (a marker for secret scanners, not a secret)


@dataclass(frozen=True)
class NumberAssignment:
    number: str
    customer_id: str
    flow_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class AdminKey:
    id: str
    name: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class NewAdminKey:
    key: AdminKey
    token: str = field(repr=False)


class Numbers(Repo):
    async def assign(
        self, number: str, *, customer_id: str, flow_id: str | None
    ) -> NumberAssignment:
        """Give ``number`` to a tenant's flow (re-assigning replaces the old owner)."""
        now = utcnow()
        async with self._tx() as conn:
            await conn.execute(delete(t.numbers).where(t.numbers.c.number == number))
            await conn.execute(
                insert(t.numbers).values(
                    number=number, customer_id=customer_id, flow_id=flow_id, created_at=now
                )
            )
        log.info("number %s assigned to customer %s (flow %s)", number, customer_id, flow_id)
        return NumberAssignment(number, customer_id, flow_id, now)

    async def get(self, number: str) -> NumberAssignment | None:
        async with self._tx() as conn:
            row = (
                (await conn.execute(select(t.numbers).where(t.numbers.c.number == number)))
                .mappings()
                .first()
            )
        return _number(row) if row else None

    async def unassign(self, number: str) -> bool:
        async with self._tx() as conn:
            result = await conn.execute(delete(t.numbers).where(t.numbers.c.number == number))
        return bool(result.rowcount)

    async def list(self, customer_id: str | None = None) -> list[NumberAssignment]:
        """Every assignment (operator), or one tenant's."""
        query = select(t.numbers).order_by(t.numbers.c.number)
        if customer_id is not None:
            query = query.where(t.numbers.c.customer_id == customer_id)
        async with self._tx() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_number(r) for r in rows]


class Tenants(Repo):
    """Customers as the operator sees them, and the operator's rules for each."""

    async def list(self) -> list[Customer]:
        async with self._tx() as conn:
            rows = (
                (await conn.execute(select(t.customers).order_by(t.customers.c.name)))
                .mappings()
                .all()
            )
        return [Customer(id=r["id"], name=r["name"], created_at=r["created_at"]) for r in rows]

    async def rules(self, customer_id: str) -> TenantOverrides | None:
        async with self._tx() as conn:
            row = (
                (
                    await conn.execute(
                        select(t.tenant_rules).where(t.tenant_rules.c.customer_id == customer_id)
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        return TenantOverrides(
            routes=tuple(row["routes"]) if row["routes"] is not None else None,
            caller_ids=tuple(row["caller_ids"]) if row["caller_ids"] is not None else None,
            concurrent_calls=row["concurrent_calls"],
            calls_per_minute=row["calls_per_minute"],
            max_call_duration_s=row["max_call_duration_s"],
        )

    async def set_rules(self, customer_id: str, overrides: TenantOverrides) -> None:
        values: dict[str, Any] = {
            "routes": list(overrides.routes) if overrides.routes is not None else None,
            "caller_ids": list(overrides.caller_ids) if overrides.caller_ids is not None else None,
            "concurrent_calls": overrides.concurrent_calls,
            "calls_per_minute": overrides.calls_per_minute,
            "max_call_duration_s": overrides.max_call_duration_s,
            "updated_at": utcnow(),
        }
        c = t.tenant_rules.c
        async with self._tx() as conn:
            found = (
                await conn.execute(select(c.customer_id).where(c.customer_id == customer_id))
            ).first()
            if found is None:
                await conn.execute(insert(t.tenant_rules).values(customer_id=customer_id, **values))
            else:
                await conn.execute(
                    update(t.tenant_rules).where(c.customer_id == customer_id).values(**values)
                )
        log.info("tenant rules of customer %s set: %s", customer_id, overrides)


class AdminKeys(Repo):
    async def create(self, name: str) -> NewAdminKey:
        token = ADMIN_TOKEN_PREFIX + secrets.token_urlsafe(32)
        key = AdminKey(id=new_id(), name=name, created_at=utcnow(), revoked_at=None)
        try:
            async with self._tx() as conn:
                await conn.execute(
                    insert(t.admin_keys).values(
                        id=key.id,
                        name=name,
                        token_hash=hash_token(token),
                        created_at=key.created_at,
                    )
                )
        except IntegrityError:  # a token collision: 256 random bits, never in practice
            raise NameTaken("admin key", name) from None
        log.info("admin key %s (%s) created", key.id, name)
        return NewAdminKey(key, token)

    async def authenticate(self, token: str) -> AdminKey | None:
        if not token.startswith(ADMIN_TOKEN_PREFIX) or len(token) > MAX_TOKEN_LENGTH:
            return None
        c = t.admin_keys.c
        async with self._tx() as conn:
            row = (
                (await conn.execute(select(t.admin_keys).where(c.token_hash == hash_token(token))))
                .mappings()
                .first()
            )
        if row is None or row["revoked_at"] is not None:
            return None
        return AdminKey(row["id"], row["name"], row["created_at"], row["revoked_at"])

    async def revoke(self, key_id: str) -> bool:
        c = t.admin_keys.c
        async with self._tx() as conn:
            result = await conn.execute(
                update(t.admin_keys)
                .where(c.id == key_id, c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        return bool(result.rowcount)


def _number(row: Any) -> NumberAssignment:
    return NumberAssignment(row["number"], row["customer_id"], row["flow_id"], row["created_at"])
