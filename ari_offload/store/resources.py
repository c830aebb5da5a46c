"""Agents and flows, each owned by one customer.

Methods that serve the API take ``customer_id`` and never see other customers' rows. The call
controller passes ``customer_id=None`` explicitly to look across customers.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from ari_offload.agent.lines import AGENT_KINDS
from ari_offload.errors import AgentInUse, NameTaken, ValidationError
from ari_offload.flows.actions import Action, agent_refs
from ari_offload.flows.model import actions_to_json, parse_actions
from ari_offload.store import schema as t
from ari_offload.store._db import Repo, new_id, utcnow
from ari_offload.store.records import Agent, Flow

log = logging.getLogger("ari_offload.store")

# Agent fields that ``Agents.update`` may change (not its kind).
AGENT_FIELDS = frozenset(
    {"name", "detail", "webhook", "secret", "voice", "speaking_rate", "language", "events_url"}
) | frozenset(t.LLM_AGENT_COLUMNS) - {"kind"}


class Agents(Repo):
    async def create(
        self,
        customer_id: str,
        *,
        name: str,
        webhook: str | None = None,
        detail: str = "",
        secret: str | None = None,
        voice: str | None = None,
        speaking_rate: float | None = None,
        language: str | None = None,
        events_url: str | None = None,
        kind: str = "webhook",
        base_url: str | None = None,
        model: str | None = None,
        system_prompt: str | None = None,
        api_key: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> Agent:
        """A webhook agent (``webhook``) or an llm one (``kind="llm"``, ``base_url``,
        ``model``...). Raises ``NameTaken`` if the customer already has an agent of that name."""
        llm = kind == "llm"
        if (
            kind not in AGENT_KINDS
            or llm == (webhook is not None)
            or (llm and None in (base_url, model))
        ):
            raise ValueError(f"an agent of kind {kind!r} has a webhook, or a base_url and a model")
        if llm:
            system_prompt = system_prompt or ""
        now = utcnow()
        agent = Agent(
            id=new_id(),
            customer_id=customer_id,
            name=name,
            detail=detail,
            webhook=webhook,
            secret=secret,
            voice=voice,
            speaking_rate=speaking_rate,
            language=language,
            events_url=events_url,
            created_at=now,
            updated_at=now,
            kind=kind,
            base_url=base_url,
            model=model,
            system_prompt=system_prompt,
            api_key=api_key,
            temperature=temperature,
            max_tokens=max_tokens,
        )
        # The webhook column is NOT NULL (migration 1): "" for an llm agent's.
        row = {**vars(agent), "webhook": webhook or ""}
        try:
            async with self._tx() as conn:
                await conn.execute(insert(t.agents).values(**row))
        except IntegrityError:
            raise NameTaken("agent", name) from None
        return agent

    async def get(self, agent_id: str, *, customer_id: str | None) -> Agent | None:
        async with self._tx() as conn:
            return await _get_agent(conn, agent_id, customer_id)

    async def list(self, customer_id: str) -> list[Agent]:
        async with self._tx() as conn:
            rows = (
                await conn.execute(
                    select(t.agents)
                    .where(t.agents.c.customer_id == customer_id)
                    .order_by(t.agents.c.name)
                )
            ).mappings()
            return [_agent(r) for r in rows]

    async def update(self, agent_id: str, *, customer_id: str, **changes: Any) -> Agent | None:
        """Change some of ``AGENT_FIELDS``; None if the agent is not the customer's."""
        unknown = set(changes) - AGENT_FIELDS
        if unknown:
            raise TypeError(f"unknown agent fields: {sorted(unknown)}")
        try:
            async with self._tx() as conn:
                if await _get_agent(conn, agent_id, customer_id) is None:
                    return None
                await conn.execute(
                    update(t.agents)
                    .where(t.agents.c.id == agent_id)
                    .values(**changes, updated_at=utcnow())
                )
                return await _get_agent(conn, agent_id, customer_id)
        except IntegrityError:
            raise NameTaken("agent", str(changes.get("name"))) from None

    async def delete(self, agent_id: str, *, customer_id: str) -> bool:
        """False if not the customer's; raises ``AgentInUse`` while a flow still uses it."""
        async with self._tx() as conn:
            if await _get_agent(conn, agent_id, customer_id) is None:
                return False
            # Flow actions are JSON: look inside them here rather than in dialect-specific SQL.
            users = [
                f.name
                for f in await _flows_of(conn, customer_id)
                if any(ref == agent_id for a in f.actions for _, ref in agent_refs(a))
            ]
            if users:
                raise AgentInUse(users)
            await conn.execute(delete(t.agents).where(t.agents.c.id == agent_id))
        return True


class Flows(Repo):
    async def create(self, customer_id: str, *, name: str, actions: list[Action]) -> Flow:
        """Raises ``NameTaken``, or ``ValidationError`` if an action names a foreign agent."""
        now = utcnow()
        flow = Flow(
            id=new_id(),
            customer_id=customer_id,
            name=name,
            actions=tuple(actions),
            created_at=now,
            updated_at=now,
        )
        try:
            async with self._tx() as conn:
                await _check_agents(conn, customer_id, actions)
                await conn.execute(
                    insert(t.flows).values(
                        id=flow.id,
                        customer_id=customer_id,
                        name=name,
                        actions=actions_to_json(actions),
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            raise NameTaken("flow", name) from None
        return flow

    async def get(self, flow_id: str, *, customer_id: str | None) -> Flow | None:
        async with self._tx() as conn:
            return await _get_flow(conn, flow_id, customer_id)

    async def update(
        self,
        flow_id: str,
        *,
        customer_id: str,
        name: str | None = None,
        actions: list[Action] | None = None,
    ) -> Flow | None:
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = name
        if actions is not None:
            changes["actions"] = actions_to_json(actions)
        try:
            async with self._tx() as conn:
                if await _get_flow(conn, flow_id, customer_id) is None:
                    return None
                if actions is not None:
                    await _check_agents(conn, customer_id, actions)
                await conn.execute(
                    update(t.flows)
                    .where(t.flows.c.id == flow_id)
                    .values(**changes, updated_at=utcnow())
                )
                return await _get_flow(conn, flow_id, customer_id)
        except IntegrityError:
            raise NameTaken("flow", str(name)) from None

    async def delete(self, flow_id: str, *, customer_id: str) -> bool:
        async with self._tx() as conn:
            result = await conn.execute(
                delete(t.flows).where(t.flows.c.id == flow_id, t.flows.c.customer_id == customer_id)
            )
            return bool(result.rowcount)

    async def for_call(self, *, flow_id: str = "", number: str = "") -> Flow | None:
        """The flow an inbound call runs: the dialled number's, or a flow id from the dialplan.

        Numbers are assigned by the operator (``store.numbers``); ``flow=`` takes ids only.
        Flow names are never looked up here: they are unique per tenant, not across tenants,
        and a tenant must not be able to capture or break another's route by naming a flow.
        """
        async with self._tx() as conn:
            if number:
                row = (
                    await conn.execute(
                        select(t.numbers.c.customer_id, t.numbers.c.flow_id).where(
                            t.numbers.c.number == number
                        )
                    )
                ).first()
                if row is None or row.flow_id is None:
                    log.debug("number %r: not assigned to a flow", number)
                    return None
                return await _get_flow(conn, row.flow_id, row.customer_id)
            if flow_id:
                return await _get_flow(conn, flow_id, None)
        return None

    # Last in the class: a method named list would shadow the builtin in later annotations.
    async def list(self, customer_id: str) -> list[Flow]:
        async with self._tx() as conn:
            return await _flows_of(conn, customer_id)


async def _check_agents(conn: AsyncConnection, customer_id: str, actions: list[Action]) -> None:
    for i, action in enumerate(actions):
        for name, agent_id in agent_refs(action):
            if await _get_agent(conn, agent_id, customer_id) is None:
                raise ValidationError(f"actions[{i}].{name}", "no such agent")


async def _get_agent(conn: AsyncConnection, agent_id: str, customer_id: str | None) -> Agent | None:
    query = select(t.agents).where(t.agents.c.id == agent_id)
    if customer_id is not None:
        query = query.where(t.agents.c.customer_id == customer_id)
    row = (await conn.execute(query)).mappings().first()
    return _agent(row) if row else None


async def _get_flow(conn: AsyncConnection, flow_id: str, customer_id: str | None) -> Flow | None:
    query = select(t.flows).where(t.flows.c.id == flow_id)
    if customer_id is not None:
        query = query.where(t.flows.c.customer_id == customer_id)
    row = (await conn.execute(query)).mappings().first()
    return _flow(row) if row else None


async def _flows_of(conn: AsyncConnection, customer_id: str) -> list[Flow]:
    rows = (
        await conn.execute(
            select(t.flows).where(t.flows.c.customer_id == customer_id).order_by(t.flows.c.name)
        )
    ).mappings()
    return [_flow(r) for r in rows]


def _agent(row: Any) -> Agent:
    fields = (
        "id", "customer_id", "name", "detail", "secret", "voice", "speaking_rate", "language",
        "events_url", "created_at", "updated_at", *t.LLM_AGENT_COLUMNS,
    )  # fmt: skip
    values = {k: row[k] for k in fields}
    values["kind"] = values["kind"] or "webhook"  # NULL: a row an older version wrote
    return Agent(webhook=row["webhook"] or None, **values)


def _flow(row: Any) -> Flow:
    return Flow(
        id=row["id"],
        customer_id=row["customer_id"],
        name=row["name"],
        actions=tuple(parse_actions(row["actions"])),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
