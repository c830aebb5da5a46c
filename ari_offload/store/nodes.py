"""The cluster's node registry: one row per ari-offload node, kept fresh by its heartbeat.

Times are the nodes' own clocks (UTC): nodes of one cluster keep them in sync (NTP), far
closer than the seconds a heartbeat may be late.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from ari_offload.store import schema as t
from ari_offload.store._db import Repo
from ari_offload.store.records import Node

log = logging.getLogger("ari_offload.store")


class Nodes(Repo):
    async def heartbeat(
        self,
        node_id: str,
        *,
        api_url: str,
        asterisk: str,
        load: int,
        ari_connected: bool,
        at: datetime,
        started_at: datetime,
    ) -> Node:
        """Record that ``node_id`` is alive at ``at``; returns its row as now stored.

        ``down_since`` is set by the first beat of a run without ARI and kept until ARI is back.
        """
        c = t.cluster_nodes.c
        values: dict[str, Any] = {
            "api_url": api_url, "asterisk": asterisk, "load": load,
            "ari_connected": ari_connected, "last_seen": at, "started_at": started_at,
        }  # fmt: skip
        for _ in range(2):  # a first beat racing another process of the same id: update then
            async with self._tx() as conn:
                row = (
                    (await conn.execute(select(t.cluster_nodes).where(c.id == node_id)))
                    .mappings()
                    .first()
                )
                # A new process (another start time) starts its own count of ARI downtime.
                down: datetime | None = None
                if not ari_connected:
                    same_run = row is not None and row["started_at"] == started_at
                    down = (row["down_since"] if row is not None and same_run else None) or at
                if row is not None:
                    await conn.execute(
                        update(t.cluster_nodes)
                        .where(c.id == node_id)
                        .values(**values, down_since=down)
                    )
                    return _node({**row, **values, "down_since": down})
            try:
                async with self._tx() as conn:
                    await conn.execute(
                        insert(t.cluster_nodes).values(id=node_id, **values, down_since=down)
                    )
                log.info("cluster: node %s joined (%s)", node_id, api_url)
                return _node({"id": node_id, **values, "down_since": down})
            except IntegrityError:
                continue
        raise AssertionError("unreachable: the row exists after a failed insert")

    async def leave(self, node_id: str, at: datetime) -> None:
        """A node stopping: no longer live for the others (placement, forwarding) from now."""
        c = t.cluster_nodes.c
        async with self._tx() as conn:
            await conn.execute(
                update(t.cluster_nodes)
                .where(c.id == node_id)
                .values(ari_connected=False, down_since=at, last_seen=at)
            )

    async def get(self, node_id: str) -> Node | None:
        async with self._tx() as conn:
            row = (
                (await conn.execute(select(t.cluster_nodes).where(t.cluster_nodes.c.id == node_id)))
                .mappings()
                .first()
            )
        return _node(row) if row else None

    async def all(self) -> list[Node]:
        async with self._tx() as conn:
            rows = (
                (await conn.execute(select(t.cluster_nodes).order_by(t.cluster_nodes.c.id)))
                .mappings()
                .all()
            )
        return [_node(r) for r in rows]


def _node(row: Any) -> Node:
    return Node(
        id=row["id"],
        api_url=row["api_url"],
        asterisk=row["asterisk"],
        started_at=row["started_at"],
        last_seen=row["last_seen"],
        load=int(row["load"]),
        ari_connected=bool(row["ari_connected"]),
        down_since=row["down_since"],
    )
