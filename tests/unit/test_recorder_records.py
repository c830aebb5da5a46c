"""The recorder writes a call only into that call's own record, never into a foreign one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest

from ari_offload.ari.call import ActiveCall
from ari_offload.ari.events import Channel
from ari_offload.ari.rest import AriRest
from ari_offload.config import StoreSettings
from ari_offload.flows.actions import Talk
from ari_offload.observe.metrics import Metrics
from ari_offload.observe.recorder import CallRecorder
from ari_offload.store import CallStatus, Direction, Store
from ari_offload.store.records import Call
from ari_offload.voice.turns import TranscriptEntry
from tests.api_support import FAST_HASHER
from tests.unit.fake_media import FakeMediaPort


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(StoreSettings(data_dir=tmp_path), password_hasher=FAST_HASHER)
    yield s
    await s.close()


def active(call_id: str, channel_id: str, flow_ref: str, direction: str = "in") -> ActiveCall:
    # The recorder never touches ARI: no client is needed.
    channel = Channel(channel_id, f"PJSIP/test-{channel_id}", "Up", caller_number="100")
    media = FakeMediaPort()  # in memory, nothing heard: its stats are all zero
    return ActiveCall(call_id, channel, {"flow": flow_ref}, direction, cast(AriRest, None), media)


async def victim_call(store: Store) -> tuple[Call, str]:
    victim = await store.customers.create("victim", "password1")
    flow = await store.flows.create(victim.id, name="support", actions=[Talk("hi")])
    record = await store.calls.create(
        victim.id, direction=Direction.IN, flow_id=flow.id, channel_id="1795476849.0"
    )
    await store.calls.set_status(record.id, CallStatus.ACTIVE)
    return record, flow.id


async def test_a_call_with_a_foreign_records_id_writes_nothing_into_it(store: Store) -> None:
    record, flow_id = await victim_call(store)
    recorder = CallRecorder(store, Metrics())
    # Another channel presents the victim's call id (however it got it).
    intruder = active(record.id, "1795476999.7", flow_id)

    await recorder.call_started(intruder)
    await recorder.call_ended(intruder)

    after = await store.calls.get(record.id, customer_id=None)
    assert after is not None
    assert after.channel_id == "1795476849.0"
    assert after.status == CallStatus.ACTIVE
    assert after.hangup_reason is None


async def test_the_same_channel_adopted_after_a_restart_goes_on_in_its_record(
    store: Store,
) -> None:
    record, flow_id = await victim_call(store)
    recorder = CallRecorder(store, Metrics())
    adopted = active(record.id, "1795476849.0", flow_id)

    await recorder.call_started(adopted)
    adopted.hangup_reason = "caller"
    await recorder.call_ended(adopted)

    after = await store.calls.get(record.id, customer_id=None)
    assert after is not None
    assert (after.status, after.hangup_reason) == (CallStatus.ENDED, "caller")


async def test_an_outbound_call_attaches_its_channel_to_its_record(store: Store) -> None:
    customer = await store.customers.create("alice", "password1")
    flow = await store.flows.create(customer.id, name="f", actions=[Talk("hi")])
    record = await store.calls.create(
        customer.id, direction=Direction.OUT, flow_id=flow.id, destination="PJSIP/bob"
    )
    recorder = CallRecorder(store, Metrics())
    # Our originate names the channel after the call record's id.
    outbound = active(record.id, record.id, flow.id, direction="out")

    await recorder.call_started(outbound)

    after = await store.calls.get(record.id, customer_id=None)
    assert after is not None
    assert (after.channel_id, after.status) == (record.id, CallStatus.ACTIVE)


async def test_a_built_in_flow_never_asks_the_store(store: Store) -> None:
    class CountingStore:
        """The store, counting every repository the recorder reaches for."""

        def __init__(self) -> None:
            self.reached: list[str] = []

        def __getattr__(self, name: str) -> object:
            self.reached.append(name)
            return getattr(store, name)

    counting = CountingStore()
    recorder = CallRecorder(cast(Store, counting), Metrics())
    call = active("call-echo", "1795476849.5", "echo")

    await recorder.call_started(call)
    recorder.transcript_added(call, TranscriptEntry("caller", "hello"))
    call.hangup_reason = "caller"
    await recorder.call_ended(call)
    await recorder.close()

    assert counting.reached == []


async def test_an_end_that_comes_while_the_record_opens_still_closes_it(store: Store) -> None:
    customer = await store.customers.create("slow", "password1")
    flow = await store.flows.create(customer.id, name="support", actions=[Talk("hi")])
    release = asyncio.Event()

    class SlowCalls:
        """The store's calls, with the first lookup stuck until released (a locked DB)."""

        def __getattr__(self, name: str) -> object:
            return getattr(store.calls, name)

        async def get(self, call_id: str, *, customer_id: str | None) -> object:
            await release.wait()
            return await store.calls.get(call_id, customer_id=customer_id)

    class SlowStore:
        calls = SlowCalls()

        def __getattr__(self, name: str) -> object:
            return getattr(store, name)

    recorder = CallRecorder(cast(Store, SlowStore()), Metrics())
    call = active("call-slow", "1795476849.7", flow.id)
    starting = asyncio.create_task(recorder.call_started(call))
    await asyncio.sleep(0.01)
    call.hangup_reason = "caller"
    ending = asyncio.create_task(recorder.call_ended(call))  # the caller left meanwhile
    await asyncio.sleep(0.01)
    release.set()
    await asyncio.wait_for(asyncio.gather(starting, ending), 5)

    record = await store.calls.get("call-slow", customer_id=None)
    assert record is not None
    assert record.status == CallStatus.ENDED
    assert recorder._records == {}, "no writer left open for the call"
    await recorder.close()
