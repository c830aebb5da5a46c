"""Several nodes (one ari-offload per Asterisk) sharing one PostgreSQL store.

Each node beats: its row in the registry (``store.nodes``) says where its API is, how many
calls it runs and whether its Asterisk answers. A node is live while its beats are fresh and
its Asterisk answers. At every beat each node also closes the calls of any other node that
has been silent, or without its Asterisk, for ``node_timeout_s`` (reason ``node-lost: ...``):
the callers are gone with it, and their calls must not hold the tenants' quotas. A node that
comes back just beats again. The API reads the same rows to send a live-call command to the
call's node and to place an outbound call on the least-loaded live node (``api/forward.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit

from ari_offload.config import Settings
from ari_offload.errors import ConfigError, StoreError
from ari_offload.store._db import utcnow
from ari_offload.store.records import Node
from ari_offload.store.store import Store

log = logging.getLogger("ari_offload.cluster")

LOST_PREFIX = "node-lost"  # the start of the hangup reason of calls closed for a lost node


@dataclass(frozen=True)
class NodeIdentity:
    id: str
    api_url: str  # where the other nodes reach this node's API
    asterisk: str


def node_id_of(settings: Settings) -> str | None:
    """This node's id in a cluster (the host name unless set), None outside one."""
    if not settings.cluster.enabled:
        return None
    return settings.cluster.node_id or socket.gethostname()


def identity(settings: Settings, api_port: int) -> NodeIdentity:
    """This node as the registry shows it; ``api_port`` is the API's bound port."""
    cluster = settings.cluster
    api_url = cluster.api_url.rstrip("/")
    if not api_url:
        host = settings.api.host
        if host in ("", "0.0.0.0", "::"):
            raise ConfigError(
                "the API binds to every address: set ARI_OFFLOAD_CLUSTER_API_URL to the URL "
                "the other nodes reach this node's API at"
            )
        api_url = f"http://{host}:{api_port}"
    if urlsplit(api_url).path not in ("", "/"):
        # Requests are signed over their path: a proxy rewriting it would break them.
        raise ConfigError(f"ARI_OFFLOAD_CLUSTER_API_URL={api_url!r}: no path, only the server")
    asterisk = cluster.asterisk or urlsplit(settings.ari.url).hostname or settings.ari.url
    return NodeIdentity(cluster.node_id or socket.gethostname(), api_url, asterisk)


def is_live(node: Node, now: datetime, timeout_s: float) -> bool:
    """Fresh beats and its Asterisk answering: it can take calls and commands."""
    return node.ari_connected and now - node.last_seen <= timedelta(seconds=timeout_s)


def lost_reason(node: Node, now: datetime, timeout_s: float) -> str | None:
    """Why ``node`` counts as gone (the hangup reason of its calls), or None."""
    timeout = timedelta(seconds=timeout_s)
    if now - node.last_seen > timeout:
        silent = (now - node.last_seen).total_seconds()
        return f"{LOST_PREFIX}: node {node.id} sent no heartbeat for {silent:.0f} s"
    if node.down_since is not None and now - node.down_since > timeout:
        away = (now - node.down_since).total_seconds()
        return f"{LOST_PREFIX}: node {node.id} lost its Asterisk ({node.asterisk}) {away:.0f} s ago"
    return None


def least_loaded(
    nodes: Sequence[Node], loads: Mapping[str, int], me: str, now: datetime, timeout_s: float
) -> Node | None:
    """The live node with the fewest calls in the store (this node on a tie: no hop)."""
    live = [n for n in nodes if is_live(n, now, timeout_s)]
    return min(live, key=lambda n: (loads.get(n.id, 0), n.id != me, n.id), default=None)


class ClusterMetrics(Protocol):
    def cluster_view(self, live: int, known: int) -> None: ...

    def node_calls_closed(self, count: int) -> None: ...


class Heartbeat:
    """This node's beat, and the closing of lost nodes' calls at each beat."""

    def __init__(
        self,
        store: Store,
        me: NodeIdentity,
        settings: Settings,
        *,
        load: Callable[[], int],
        ari_up: asyncio.Event,
        metrics: ClusterMetrics | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self.me = me
        self._interval_s = settings.cluster.heartbeat_s
        self._timeout_s = settings.cluster.node_timeout_s
        self._load = load
        self._ari_up = ari_up  # set while this node's ARI connection is up
        self._metrics = metrics
        self._clock = clock
        self._started_at = clock()
        self._failing = False  # the store refuses beats: said once, not every second

    async def beat_once(self) -> int:
        """One beat, then close lost nodes' calls; returns how many calls were closed."""
        now = self._clock()
        await self._store.nodes.heartbeat(
            self.me.id, api_url=self.me.api_url, asterisk=self.me.asterisk, load=self._load(),
            ari_connected=self._ari_up.is_set(), at=now, started_at=self._started_at,
        )  # fmt: skip
        nodes = await self._store.nodes.all()
        if self._metrics is not None:
            live = sum(is_live(n, now, self._timeout_s) for n in nodes)
            self._metrics.cluster_view(live, len(nodes))
        return await self._close_lost(nodes, now)

    async def _close_lost(self, nodes: Sequence[Node], now: datetime) -> int:
        lost = {
            n.id: reason
            for n in nodes
            if n.id != self.me.id and (reason := lost_reason(n, now, self._timeout_s))
        }
        if not lost:
            return 0
        closed = 0
        for node_id, count in (await self._store.calls.count_unfinished_by_node()).items():
            if node_id not in lost or not count:
                continue
            done = await self._store.calls.close_unfinished_of(node_id, lost[node_id], now)
            if done:
                log.warning("cluster: closed %d call(s) of node %s (%s)", done, node_id,
                            lost[node_id])  # fmt: skip
                closed += done
        if closed and self._metrics is not None:
            self._metrics.node_calls_closed(closed)
        return closed

    async def run(self) -> None:
        """Beat every ``heartbeat_s``, and at once when this node's Asterisk connects (the
        others may send it calls from then on), until cancelled. A store outage is logged,
        not fatal."""
        log.info("cluster: node %s (API %s, Asterisk %s) beating every %.1f s", self.me.id,
                 self.me.api_url, self.me.asterisk, self._interval_s)  # fmt: skip
        while True:
            try:
                await self.beat_once()
                if self._failing:
                    log.info("cluster: heartbeats recorded again")
                self._failing = False
            except StoreError as exc:
                if not self._failing:
                    log.warning("cluster: heartbeat not recorded (%s); retrying", exc)
                self._failing = True
            if self._ari_up.is_set():
                await asyncio.sleep(self._interval_s)
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval_s):
                    await self._ari_up.wait()
