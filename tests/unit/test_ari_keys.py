"""One press, one key: ARI's ChannelDtmfReceived and the media transport's DTMF_END report
the same presses; the merge passes each once, whichever source comes first or misses one."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ari_offload.ari.call import ActiveCall
from ari_offload.ari.events import ChannelDtmfReceived
from ari_offload.ari.keys import KeyMerge
from tests.unit.test_controller_tasks import CHANNEL, controller


def test_the_second_report_of_a_press_is_dropped_whichever_comes_first() -> None:
    merge = KeyMerge(window_s=1.0)
    assert merge.accept("ari", "5", 0.0)
    assert not merge.accept("media", "5", 0.01)
    assert merge.accept("media", "7", 0.5)  # the transport can be first
    assert not merge.accept("ari", "7", 0.6)
    assert merge.repeats == 2


def test_a_key_pressed_twice_counts_twice_when_both_sources_report_both() -> None:
    merge = KeyMerge()
    reports = [("ari", 0.0), ("ari", 0.2), ("media", 0.21), ("media", 0.25)]
    assert [merge.accept(source, "1", at) for source, at in reports] == [True, True, False, False]


def test_a_press_one_source_missed_still_counts_once() -> None:
    merge = KeyMerge()
    assert merge.accept("ari", "1", 0.0)
    assert merge.accept("ari", "2", 0.3)  # the transport never reports this one
    assert not merge.accept("media", "1", 0.05)
    assert merge.accept("media", "3", 0.6)
    assert not merge.accept("ari", "3", 0.62)
    assert not merge.accept("media", "2", 0.31)  # a late twin of "2": still within the window


def test_a_report_from_the_other_source_past_the_window_is_a_new_press() -> None:
    merge = KeyMerge(window_s=1.0)
    assert merge.accept("ari", "9", 0.0)
    assert merge.accept("media", "9", 1.5)
    assert merge.accept("media", "9", 1.6)  # one source alone: every report is a press


class Keypad:
    """What a conversation does with keys: keeps them."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def inject(self, text: str) -> None:
        raise AssertionError("no text in this test")

    def digit(self, digit: str) -> None:
        self.keys.append(digit)


def dtmf(digit: str) -> ChannelDtmfReceived:
    return ChannelDtmfReceived("ChannelDtmfReceived", "ari-offload", {}, CHANNEL, digit, 100)


async def test_the_controller_gives_the_conversation_each_press_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keypad = Keypad()
    talking = asyncio.Event()

    async def flow(call: ActiveCall) -> None:
        call.conversation = keypad
        talking.set()
        await asyncio.Event().wait()

    ctl = controller(monkeypatch, flow)
    handler = asyncio.create_task(ctl._handle_call(CHANNEL, {}, "in", None))
    await asyncio.wait_for(talking.wait(), 5)
    (call,) = ctl.calls.values()
    port: Any = call.media
    assert port.on_key is not None, "the controller listens to the transport's keys"
    ctl.on_event(dtmf("4"))
    port.on_key("4")  # the same press, as chan_websocket reports it
    port.on_key("2")  # this one the transport reports first
    ctl.on_event(dtmf("2"))
    ctl.on_event(dtmf("x"))  # not a key: ignored
    assert keypad.keys == ["4", "2"]
    await ctl._end_call(call)
    await asyncio.wait_for(handler, 5)
