"""FlowDispatcher: built-ins first, then the resolver, then on_unknown."""

from __future__ import annotations

from typing import cast

import pytest

from ari_offload.ari.call import ActiveCall, FlowRunner
from ari_offload.ari.events import Channel
from ari_offload.ari.rest import AriRest
from ari_offload.flows.dispatch import FlowDispatcher
from tests.unit.fake_media import FakeMediaPort


def make_call(args: dict[str, str]) -> ActiveCall:
    # No ARI and in-memory media: the dispatcher only reads flow_ref and call_id, and sets
    # hangup_reason.
    channel = Channel(id="1795476849.0", name="PJSIP/test-caller-00000000", state="Up")
    return ActiveCall("call-1", channel, args, "in", cast(AriRest, None), FakeMediaPort())


class Flow:
    """A flow runner that records the calls it ran."""

    def __init__(self) -> None:
        self.ran: list[ActiveCall] = []

    async def __call__(self, call: ActiveCall) -> None:
        self.ran.append(call)


class Resolver:
    """A resolver backed by a dict, recording what it was asked for."""

    def __init__(self, flows: dict[str, FlowRunner]) -> None:
        self.flows = flows
        self.asked: list[str] = []

    async def __call__(self, call: ActiveCall) -> FlowRunner | None:
        ref = call.flow_ref or f"number:{call.dialled_number}"
        self.asked.append(ref)
        return self.flows.get(ref)


async def test_runs_the_builtin_named_by_the_call() -> None:
    echo, other = Flow(), Flow()
    call = make_call({"flow": "echo"})

    await FlowDispatcher({"echo": echo, "other": other})(call)

    assert echo.ran == [call]
    assert other.ran == []
    assert call.hangup_reason == ""


async def test_builtins_win_over_the_resolver() -> None:
    builtin, stored = Flow(), Flow()
    resolver = Resolver({"echo": stored})

    await FlowDispatcher({"echo": builtin}, resolver)(make_call({"flow": "echo"}))

    assert len(builtin.ran) == 1
    assert stored.ran == []
    assert resolver.asked == []


async def test_falls_back_to_the_resolver() -> None:
    support = Flow()
    resolver = Resolver({"support": support})
    call = make_call({"flow": "support"})

    await FlowDispatcher({"echo": Flow()}, resolver)(call)

    assert resolver.asked == ["support"]
    assert support.ran == [call]


async def test_a_dialled_number_goes_to_the_resolver() -> None:
    support = Flow()
    resolver = Resolver({"number:7001": support})
    call = make_call({"number": "7001"})

    await FlowDispatcher({"echo": Flow()}, resolver)(call)

    assert resolver.asked == ["number:7001"]
    assert support.ran == [call]


async def test_a_number_never_reaches_a_builtin() -> None:
    # number=echo from a dialplan is a number to look up, not the built-in echo flow.
    echo = Flow()
    resolver = Resolver({})
    await FlowDispatcher({"echo": echo}, resolver)(make_call({"number": "echo"}))
    assert echo.ran == []
    assert resolver.asked == ["number:echo"]


@pytest.mark.parametrize("with_resolver", [True, False])
async def test_unknown_flow_calls_on_unknown(with_resolver: bool) -> None:
    unknown = Flow()
    resolver = Resolver({}) if with_resolver else None
    call = make_call({"flow": "nope"})

    await FlowDispatcher({"echo": Flow()}, resolver, on_unknown=unknown)(call)

    assert unknown.ran == [call]
    assert call.hangup_reason == "unknown-flow"
    if resolver is not None:
        assert resolver.asked == ["nope"]


async def test_unknown_flow_without_on_unknown_just_returns() -> None:
    call = make_call({"flow": "nope"})

    await FlowDispatcher({})(call)

    assert call.hangup_reason == "unknown-flow"


async def test_no_flow_argument_is_unknown_and_does_not_ask_the_resolver() -> None:
    unknown = Flow()
    resolver = Resolver({"": Flow()})
    call = make_call({})

    await FlowDispatcher({"echo": Flow()}, resolver, on_unknown=unknown)(call)

    assert resolver.asked == []
    assert unknown.ran == [call]


async def test_flow_errors_reach_the_caller() -> None:
    # The controller logs them and hangs up; the dispatcher must not swallow them.
    async def broken(call: ActiveCall) -> None:
        raise RuntimeError("flow bug")

    with pytest.raises(RuntimeError, match="flow bug"):
        await FlowDispatcher({"echo": broken})(make_call({"flow": "echo"}))


async def test_builtins_are_copied() -> None:
    builtins: dict[str, FlowRunner] = {}
    dispatcher = FlowDispatcher(builtins)
    late = Flow()
    builtins["echo"] = late  # changing the caller's dict later does not change the dispatcher

    await dispatcher(make_call({"flow": "echo"}))

    assert late.ran == []
