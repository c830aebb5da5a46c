"""The cluster's shared state on a real PostgreSQL: heartbeats, the calls of a lost node
closed by a survivor, a node coming back, and a tenant quota two nodes race for.

Each node has its own Store (its own engine and connections), as two processes would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ari_offload.cluster import Heartbeat, NodeIdentity, is_live
from ari_offload.config import ClusterSettings, Settings, StoreSettings
from ari_offload.errors import QuotaExceeded
from ari_offload.policy import Policy, TenantOverrides, TenantRules
from ari_offload.policy_file import load_policy
from ari_offload.quotas import check_quotas, tenant_rules
from ari_offload.store import CallStatus, Direction, Store
from ari_offload.store.records import Call
from testbed.asterisk import TESTBED_POLICY_FILE
from tests.api_support import FAST_HASHER

SETTINGS = Settings(cluster=ClusterSettings(heartbeat_s=1.0, node_timeout_s=5.0))


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
async def stores(tmp_path: Path, postgres_url: str) -> AsyncIterator[tuple[Store, Store]]:
    settings = StoreSettings(data_dir=tmp_path, url=postgres_url)
    opened = [await Store.open(settings, password_hasher=FAST_HASHER) for _ in range(2)]
    yield opened[0], opened[1]
    for store in opened:
        await store.close()


def heartbeat(store: Store, node_id: str, clock: Clock, ari_up: asyncio.Event) -> Heartbeat:
    me = NodeIdentity(node_id, f"http://{node_id}:8080", f"asterisk-{node_id}")
    return Heartbeat(store, me, SETTINGS, load=lambda: 2, ari_up=ari_up, clock=clock)


def up() -> asyncio.Event:
    event = asyncio.Event()
    event.set()
    return event


async def live(store: Store, node_id: str, clock: Clock) -> bool:
    node = await store.nodes.get(node_id)
    assert node is not None
    return is_live(node, clock.now, SETTINGS.cluster.node_timeout_s)


async def calls_of(store: Store, customer_id: str, node_id: str | None, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        call = await store.calls.create(customer_id, direction=Direction.IN, flow_id=None,
                                        node_id=node_id)  # fmt: skip
        await store.calls.set_status(call.id, CallStatus.ACTIVE)
        ids.append(call.id)
    return ids


async def test_a_lost_nodes_calls_are_closed_by_a_survivor_and_it_rejoins(
    stores: tuple[Store, Store],
) -> None:
    store_a, store_b = stores
    clock, up_a, up_b = Clock(), up(), up()
    beat_a = heartbeat(store_a, "a", clock, up_a)
    beat_b = heartbeat(store_b, "b", clock, up_b)
    await beat_a.beat_once()
    await beat_b.beat_once()
    customer = await store_a.customers.create("tenant", "tenant-password")
    on_a = await calls_of(store_a, customer.id, "a", 2)
    ringing = await store_a.calls.create(customer.id, direction=Direction.OUT, flow_id=None,
                                         node_id="a")  # fmt: skip
    on_b = await calls_of(store_b, customer.id, "b", 1)
    single = await calls_of(store_b, customer.id, None, 1)  # from before the cluster: nobody's

    clock.advance(4)  # a stops beating; 4 s is within the timeout
    assert await beat_b.beat_once() == 0
    clock.advance(2)
    assert await beat_b.beat_once() == 3
    assert await beat_b.beat_once() == 0  # closed once

    async def status(call_id: str) -> tuple[CallStatus, str | None]:
        call = await store_b.calls.get(call_id, customer_id=None)
        assert call is not None
        return call.status, call.hangup_reason

    reason = "node-lost: node a sent no heartbeat for 6 s"
    assert [await status(c) for c in on_a] == [(CallStatus.ENDED, reason)] * 2
    assert await status(ringing.id) == (CallStatus.FAILED, reason)
    assert [await status(c) for c in on_b + single] == [(CallStatus.ACTIVE, None)] * 2
    assert len(await store_b.calls.list_unfinished()) == 2  # the tenant's quotas free again

    await beat_a.beat_once()  # a is back
    assert await live(store_b, "a", clock)
    back = await calls_of(store_a, customer.id, "a", 1)
    clock.advance(1)
    assert await beat_b.beat_once() == 0
    assert await status(back[0]) == (CallStatus.ACTIVE, None)


async def test_a_node_without_its_asterisk_for_the_timeout_is_lost(
    stores: tuple[Store, Store],
) -> None:
    store_a, store_b = stores
    clock, up_a, up_b = Clock(), up(), up()
    beat_a = heartbeat(store_a, "a", clock, up_a)
    beat_b = heartbeat(store_b, "b", clock, up_b)
    customer = await store_a.customers.create("tenant", "tenant-password")
    await beat_a.beat_once()
    on_a = await calls_of(store_a, customer.id, "a", 1)

    up_a.clear()  # a beats on, but its Asterisk is gone
    for _ in range(5):
        await beat_a.beat_once()
        assert await beat_b.beat_once() == 0
        clock.advance(1)
    clock.advance(1)  # 6 s without Asterisk
    await beat_a.beat_once()
    assert await beat_b.beat_once() == 1
    call = await store_b.calls.get(on_a[0], customer_id=None)
    assert call is not None
    assert call.hangup_reason == "node-lost: node a lost its Asterisk (asterisk-a) 6 s ago"
    assert not await live(store_b, "a", clock)
    up_a.set()
    await beat_a.beat_once()
    assert await live(store_b, "a", clock)


async def test_a_node_beats_at_once_when_its_asterisk_connects(
    stores: tuple[Store, Store],
) -> None:
    """A restarted node is live for the others as soon as its ARI connects, not a beat
    later (here the beats are 10 s apart)."""
    store, _ = stores
    ari_up = asyncio.Event()
    me = NodeIdentity("a", "http://a:8080", "asterisk-a")
    slow = Settings(cluster=ClusterSettings(heartbeat_s=10.0, node_timeout_s=30.0))
    beating = asyncio.create_task(Heartbeat(store, me, slow, load=lambda: 0, ari_up=ari_up).run())
    try:
        async with asyncio.timeout(5):
            while (node := await store.nodes.get("a")) is None:
                await asyncio.sleep(0.05)
        assert not node.ari_connected
        ari_up.set()
        async with asyncio.timeout(2):
            while not (node := await store.nodes.get("a")) or not node.ari_connected:
                await asyncio.sleep(0.05)
    finally:
        beating.cancel()
        await asyncio.gather(beating, return_exceptions=True)


async def admit(store: Store, policy: Policy, rules: TenantRules, customer_id: str,
                start: asyncio.Event) -> Call | None:  # fmt: skip
    """What a node does for each new call: record it, then admit it under the quotas
    (app.py for inbound calls, api/routes_calls.py for outbound ones)."""
    await start.wait()
    call = await store.calls.create(customer_id, direction=Direction.IN, flow_id=None)
    try:
        await check_quotas(store, policy, rules, customer_id, call.id, call.started_at)
    except QuotaExceeded as exc:
        await store.calls.set_status(call.id, CallStatus.FAILED, reason=f"quota: {exc.rule}")
        return None
    await store.calls.set_status(call.id, CallStatus.ACTIVE)
    return call


@pytest.fixture(params=["postgresql", "sqlite"])
def race_url(request: pytest.FixtureRequest) -> str:
    """PostgreSQL, and SQLite (two processes on one machine sharing its file)."""
    url: str = request.getfixturevalue("postgres_url") if request.param == "postgresql" else ""
    return url


@pytest.fixture
async def race_stores(tmp_path: Path, race_url: str) -> AsyncIterator[tuple[Store, Store]]:
    settings = StoreSettings(data_dir=tmp_path, url=race_url)
    opened = [await Store.open(settings, password_hasher=FAST_HASHER) for _ in range(2)]
    yield opened[0], opened[1]
    for store in opened:
        await store.close()


async def test_two_nodes_racing_for_the_last_slot_never_both_win(
    race_stores: tuple[Store, Store],
) -> None:
    """A quota of 3 concurrent calls, 2 in progress: node a and node b admit a call at the
    same moment, 30 times over. Exactly one of each pair gets the slot."""
    store_a, store_b = race_stores
    policy = load_policy(TESTBED_POLICY_FILE)
    customer = await store_a.customers.create("racer", "racer-password")
    await store_a.tenants.set_rules(customer.id, TenantOverrides(concurrent_calls=3))
    rules = await tenant_rules(store_a, policy, customer.id)
    assert rules.quotas.concurrent_calls == 3
    go = asyncio.Event()
    go.set()
    held = [await admit(store_a, policy, rules, customer.id, go) for _ in range(2)]
    assert None not in held
    for _ in range(30):
        start = asyncio.Event()
        racing = [
            asyncio.create_task(admit(store, policy, rules, customer.id, start))
            for store in (store_a, store_b)
        ]
        await asyncio.sleep(0.01)
        start.set()
        won = [call for call in await asyncio.gather(*racing) if call is not None]
        assert len(won) == 1, f"{len(won)} nodes took the last slot"
        assert len(await store_a.calls.list_unfinished()) == len(held) + 1
        await store_b.calls.set_status(won[0].id, CallStatus.ENDED, reason="caller")
