"""A call's handler leaves no task behind when it is cancelled (the app shutting down), and
a call's end is told to the observer only after its flow has stopped."""

from __future__ import annotations

import asyncio
import gc
import logging
from types import SimpleNamespace
from typing import Any, cast

import pytest

from ari_offload.ari.call import ActiveCall
from ari_offload.ari.controller import CallController
from ari_offload.ari.events import Channel
from ari_offload.ari.rest import AriRest
from ari_offload.config import AriSettings, MediaSettings
from ari_offload.media import transports
from tests.unit.test_controller_media import FakeLink

CHANNEL = Channel(id="1795476849.0", name="PJSIP/anonymous-00000001", state="Up")


class SetUpRest:
    """Every ARI request a call's set-up and tear-down make, answered at once."""

    settings = AriSettings()

    def __init__(self) -> None:
        self.controller: CallController | None = None

    async def external_media(self, channel_id: str, *args: Any, **kwargs: Any) -> Any:
        assert self.controller is not None
        for call in self.controller.calls.values():
            call.media_in_stasis.set()  # its StasisStart, as Asterisk would send it
        return SimpleNamespace(channelvars={})

    async def get_variable(self, channel_id: str, name: str) -> str:
        return ""

    def __getattr__(self, name: str) -> Any:
        async def ok(*args: Any, **kwargs: Any) -> None:
            return None

        return ok


class EndsLog:
    def __init__(self) -> None:
        self.flow_stopped_at_end: list[bool] = []

    async def call_started(self, call: ActiveCall) -> None:
        pass

    async def call_ended(self, call: ActiveCall) -> None:
        self.flow_stopped_at_end.append(call.flow_stopped.is_set())

    async def outbound_failed(self, call_id: str, reason: str) -> None:
        pass

    async def call_refused(self, call: ActiveCall) -> None:
        pass


def controller(monkeypatch: pytest.MonkeyPatch, flow: Any, observer: Any = None) -> CallController:
    async def open_fake(media: MediaSettings, ari: AriSettings) -> FakeLink:
        return FakeLink()

    monkeypatch.setitem(transports.TRANSPORTS, "fake", open_fake)
    rest = SetUpRest()
    ctl = CallController(
        cast(AriRest, rest), MediaSettings(transport="fake"), flow, observer,
        max_call_duration_s=60,
    )  # fmt: skip
    rest.controller = ctl
    return ctl


async def test_a_cancelled_call_handler_leaves_no_task_pending(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="asyncio")
    running = asyncio.Event()

    async def flow(call: ActiveCall) -> None:
        running.set()
        await asyncio.Event().wait()

    ctl = controller(monkeypatch, flow)
    handler = asyncio.create_task(ctl._handle_call(CHANNEL, {}, "in", None))
    await asyncio.wait_for(running.wait(), 5)
    handler.cancel()  # shutdown
    await asyncio.gather(handler, return_exceptions=True)
    await asyncio.sleep(0.01)
    pending = [repr(t) for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    del handler, ctl
    gc.collect()
    destroyed = caplog.text.count("Task was destroyed but it is pending")
    assert (pending, destroyed) == ([], 0), "the flow, the watchdog and the waits all ended"


async def test_the_end_of_a_call_is_told_after_its_flow_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    running = asyncio.Event()

    async def flow(call: ActiveCall) -> None:
        running.set()
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0.05)  # e.g. the conversation's own clean-up

    ends = EndsLog()
    ctl = controller(monkeypatch, flow, ends)
    handler = asyncio.create_task(ctl._handle_call(CHANNEL, {}, "in", None))
    await asyncio.wait_for(running.wait(), 5)
    (call,) = ctl.calls.values()
    await ctl._end_call(call)  # StasisEnd: the caller hung up
    await asyncio.wait_for(handler, 5)
    assert ends.flow_stopped_at_end == [True]
