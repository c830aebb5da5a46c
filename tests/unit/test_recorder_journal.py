"""Write-ahead recording: each fact reaches the store in order the moment it is known, the
conversation never waits for the store, and a call's end is its last write."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ari_offload.ari.call import ActiveCall
from ari_offload.errors import StoreError
from ari_offload.flows.actions import Talk
from ari_offload.observe.journal import CallJournal
from ari_offload.observe.metrics import Metrics
from ari_offload.observe.recorder import ADOPTED_TEXT, CallRecorder
from ari_offload.store import CallStatus, Store
from ari_offload.voice.turns import TranscriptEntry, TurnTiming
from tests.unit.test_recorder_records import active, store, victim_call

__all__ = ["store"]  # the fixture, imported


@pytest.fixture
async def started(store: Store) -> AsyncIterator[tuple[CallRecorder, ActiveCall]]:
    customer = await store.customers.create("alice", "password1")
    flow = await store.flows.create(customer.id, name="support", actions=[Talk("hi")])
    recorder = CallRecorder(store, Metrics())
    call = active("call-1", "1795476849.0", flow.id)
    await recorder.call_started(call)
    yield recorder, call
    await recorder.close()


async def stored(store: Store, call_id: str) -> tuple[list[tuple[str, str]], list[Any]]:
    lines = [(str(line.role), line.text) for line in await store.calls.transcript(call_id)]
    return lines, await store.calls.turns(call_id)


async def settled(journal_owner: CallRecorder, call: ActiveCall) -> None:
    """Wait until the call's journal has written all it was given (the test's view only)."""
    done = asyncio.Event()

    async def mark() -> None:
        done.set()

    journal_owner._records[call.call_id].journal.submit("mark", mark)
    await asyncio.wait_for(done.wait(), 5)


async def test_each_fact_is_in_the_store_before_the_turn_ends(
    store: Store, started: tuple[CallRecorder, ActiveCall]
) -> None:
    recorder, call = started
    recorder.transcript_added(call, TranscriptEntry("caller", "Where is my parcel?"))
    timing = TurnTiming(1, endpoint_ms=400, stt_ms=60)
    recorder.turn_updated(call, timing)  # the webhook is about to be asked
    await settled(recorder, call)
    lines, (turn,) = await stored(store, call.call_id)
    assert lines == [("caller", "Where is my parcel?")]
    assert (turn.turn, turn.endpoint_ms, turn.stt_ms, turn.webhook_ms) == (1, 400, 60, None)

    timing.webhook_ms, timing.tts_first_audio_ms, timing.total_ms = 80, 40, 580
    agent = TranscriptEntry("agent", "It is on its way. It comes today.")
    recorder.transcript_added(call, agent)  # its first audio is queued
    recorder.turn_updated(call, timing)
    timing.webhook_ms = 9999  # changed after: the store has the values as they were told
    await settled(recorder, call)
    _, (turn,) = await stored(store, call.call_id)
    assert (turn.webhook_ms, turn.tts_first_audio_ms, turn.total_ms) == (80, 40, 580)

    recorder.transcript_corrected(call, agent, dataclasses.replace(agent, heard="It is on"))
    call.hangup_reason = "caller"
    await recorder.call_ended(call)  # drains the journal: no wait needed
    lines, _ = await stored(store, call.call_id)
    assert lines == [
        ("caller", "Where is my parcel?"),
        ("agent", "It is on its way. It comes today. [heard: It is on]"),
    ]
    record = await store.calls.get(call.call_id, customer_id=None)
    assert record is not None
    assert (record.status, record.hangup_reason) == (CallStatus.ENDED, "caller")
    assert asyncio.all_tasks() == {asyncio.current_task()}, "the call's writer has ended"


async def test_a_correction_cleared_by_a_resumed_reply_leaves_the_plain_line(
    store: Store, started: tuple[CallRecorder, ActiveCall]
) -> None:
    recorder, call = started
    agent = TranscriptEntry("agent", "It is on its way. It comes today.")
    recorder.transcript_added(call, agent)
    cut = dataclasses.replace(agent, heard="It is on")  # a cough cut the reply
    recorder.transcript_corrected(call, agent, cut)
    await settled(recorder, call)
    assert (await stored(store, call.call_id))[0] == [
        ("agent", "It is on its way. It comes today. [heard: It is on]")
    ], "on record while the verdict is awaited"
    recorder.transcript_corrected(call, cut, dataclasses.replace(cut, heard=None))  # resumed
    await recorder.call_ended(call)
    lines, _ = await stored(store, call.call_id)
    assert lines == [("agent", "It is on its way. It comes today.")], "one line, heard whole"


async def test_the_conversation_never_waits_for_a_slow_store(
    store: Store, started: tuple[CallRecorder, ActiveCall], monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder, call = started
    add = store.calls.add_transcript
    order: list[str] = []

    async def slow_add(call_id: str, role: Any, text: str, **kw: Any) -> Any:
        await asyncio.sleep(0.2)
        order.append(text)
        return await add(call_id, role, text, **kw)

    monkeypatch.setattr(store.calls, "add_transcript", slow_add)
    loop = asyncio.get_running_loop()
    before = loop.time()
    for text in ("one", "two", "three"):
        recorder.transcript_added(call, TranscriptEntry("caller", text))
    assert loop.time() - before < 0.05, "handed in, not written, while the call goes on"
    await recorder.call_ended(call)
    assert order == ["one", "two", "three"]
    lines, _ = await stored(store, call.call_id)
    assert [text for _, text in lines] == ["one", "two", "three"]


async def test_a_failed_write_is_logged_and_the_next_goes_in(
    store: Store, started: tuple[CallRecorder, ActiveCall], caplog: pytest.LogCaptureFixture
) -> None:
    recorder, call = started
    recorder.turn_updated(call, TurnTiming(1))
    recorder.turn_updated(call, TurnTiming(1, webhook_ms=5))
    journal = recorder._records[call.call_id].journal

    async def refused() -> None:
        raise StoreError("disk full")

    journal.submit("a test write", refused)
    recorder.transcript_added(call, TranscriptEntry("caller", "still recorded"))
    await recorder.call_ended(call)
    assert "call call-1: a test write not recorded: disk full" in caplog.text
    lines, (turn,) = await stored(store, call.call_id)
    assert lines == [("caller", "still recorded")]
    assert turn.webhook_ms == 5, "the second update of turn 1 updated the first's row"


async def test_an_adopted_call_says_so_and_numbers_on_after_the_stored_turns(
    store: Store,
) -> None:
    record, flow_id = await victim_call(store)
    await store.calls.add_turn(record.id, turn=1, endpoint_ms=400)
    await store.calls.add_turn(record.id, turn=2, endpoint_ms=400)
    recorder = CallRecorder(store, Metrics())
    adopted = active(record.id, "1795476849.0", flow_id)
    adopted.adopted = True
    await recorder.call_started(adopted)
    assert adopted.turns == 2
    recorder.turn_updated(adopted, TurnTiming(adopted.turns + 1, endpoint_ms=300))
    await recorder.call_ended(adopted)
    lines, turns = await stored(store, record.id)
    assert lines == [("system", ADOPTED_TEXT)]
    assert [t.turn for t in turns] == [1, 2, 3]


async def test_shutdown_stops_the_writers_of_calls_still_open(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)  # asyncio's errors and ours
    blocked = asyncio.Event()
    journal = CallJournal("call-9")

    async def stuck() -> None:
        blocked.set()
        await asyncio.Event().wait()

    journal.submit("a write the store never answers", stuck)
    journal.submit("queued behind it", stuck)
    await asyncio.wait_for(blocked.wait(), 5)
    await journal.abort()
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert "call call-9: 1 writes not recorded at shutdown" in caplog.text
    assert "Task was destroyed" not in caplog.text


async def test_a_write_after_the_end_is_refused_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    journal = CallJournal("call-7")
    await journal.close()

    async def late() -> None:
        raise AssertionError("never written")

    journal.submit("a late line", late)
    assert "call call-7: a late line came after the call's end; not recorded" in caplog.text


async def test_caught_up_returns_once_every_write_handed_in_is_done() -> None:
    journal = CallJournal("call-9")
    written: list[str] = []
    gate = asyncio.Event()

    async def slow_write() -> None:
        await gate.wait()
        written.append("turn 1")

    journal.submit("turn 1", slow_write)
    waiting = asyncio.create_task(journal.caught_up())
    await asyncio.sleep(0.01)
    assert not waiting.done(), "the turn is not on record yet"
    gate.set()
    await asyncio.wait_for(waiting, 1)
    assert written == ["turn 1"]
    await journal.close()
    await asyncio.wait_for(journal.caught_up(), 1)  # closed: nothing to wait for
