"""The `record` action starts the call's recording and the flow goes on; on a server that
records nothing the flow goes on too, with a warning."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import cast

import pytest

from ari_offload.ari.call import ActiveCall
from ari_offload.ari.events import Channel
from ari_offload.ari.rest import AriRest
from ari_offload.flows.actions import Pause, Record
from ari_offload.flows.executor import FlowContext, run_actions
from ari_offload.flows.model import parse_actions
from tests.unit.fake_media import FakeMediaPort


def make_call() -> ActiveCall:
    channel = Channel(id="1795476849.0", name="PJSIP/test-caller-00000000", state="Up")
    return ActiveCall("call-1", channel, {}, "in", cast(AriRest, None), FakeMediaPort())


def test_it_parses_with_no_fields_and_refuses_any() -> None:
    assert parse_actions([{"type": "record"}]) == [Record()]
    with pytest.raises(ValueError, match="unknown field for action 'record'"):
        parse_actions([{"type": "record", "format": "mp3"}])


async def test_record_starts_the_recording_and_the_flow_goes_on() -> None:
    started: list[str] = []

    async def start(call: ActiveCall) -> None:
        started.append(call.call_id)

    call = make_call()
    ctx = cast(FlowContext, SimpleNamespace(start_recording=start))
    await run_actions(call, [Record(), Pause(0.01)], ctx)
    assert started == ["call-1"]
    assert call.state == "pause", "the next action ran"


async def test_a_server_that_records_nothing_goes_on_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    call = make_call()
    ctx = cast(FlowContext, SimpleNamespace(start_recording=None))
    with caplog.at_level(logging.WARNING):
        await run_actions(call, [Record(), Pause(0.01)], ctx)
    assert call.state == "pause"
    assert "records no calls" in caplog.text
