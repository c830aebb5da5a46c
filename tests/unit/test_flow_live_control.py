"""What the API does to a call's flow, in memory (a fake ARI that records requests, the
in-memory media port; tests/integration/test_live_control.py does it on real calls).

A transfer cuts into the running flow (``ActiveCall.flow``): the action in progress stops and
the flow's own transfer action runs, under the policy, once; a call already leaving is not
cut. say_message says the message the call was placed with, else its fallback."""

from __future__ import annotations

import asyncio
from typing import cast

from ari_offload.agent.client import WebhookClient
from ari_offload.ari.call import ActiveCall
from ari_offload.ari.events import Channel
from ari_offload.ari.rest import AriRest
from ari_offload.config import Settings
from ari_offload.flows.actions import Action, Hangup, Pause, SayMessage
from ari_offload.flows.executor import FlowContext, run_actions
from ari_offload.policy_file import load_policy
from ari_offload.speech.models import SpeechModels
from testbed.asterisk import TESTBED_POLICY_FILE
from tests.unit.fake_media import FakeMediaPort


class RecordingRest:
    """What a flow asks of ARI here, in order; nothing answers back."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, ...]] = []

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        if name != "ARI_OFFLOAD_STATE":  # the state label for operators: not what is tested
            self.requests.append(("set_variable", name, value))

    async def continue_in_dialplan(
        self, channel_id: str, context: str, exten: str, prio: int
    ) -> None:
        self.requests.append(("continue", context, exten, str(prio)))

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        self.requests.append(("hangup", channel_id))


def _call() -> tuple[ActiveCall, RecordingRest, FakeMediaPort]:
    rest, media = RecordingRest(), FakeMediaPort()
    channel = Channel(id="1795476849.0", name="PJSIP/test-caller-00000000", state="Up")
    call = ActiveCall("call-1", channel, {}, "in", cast(AriRest, rest), media)
    call.state = "active"
    return call, rest, media


async def _no_agent(agent_id: str) -> None:
    return None


def _ctx() -> FlowContext:
    # A transfer to the policy's "operator" (a dialplan target) needs only the policy.
    return FlowContext(
        cast(Settings, None), cast(SpeechModels, None), cast(WebhookClient, None), _no_agent,
        policy=load_policy(TESTBED_POLICY_FILE),
    )  # fmt: skip


async def _running(call: ActiveCall, actions: list[Action]) -> asyncio.Task[None]:
    flow = asyncio.create_task(run_actions(call, actions, _ctx()))
    while call.state != "pause":  # the first action is under way
        await asyncio.sleep(0)
    return flow


async def test_a_transfer_stops_the_action_and_runs_the_flows_transfer() -> None:
    call, rest, media = _call()
    flow = await _running(call, [Pause(60), Hangup()])
    assert call.flow is not None

    assert call.flow.transfer("operator")
    async with asyncio.timeout(2):  # not after the 60 s pause
        await flow

    # The policy's [transfer.operator]: back to the dialplan, one hop counted; no hangup.
    assert rest.requests == [
        ("set_variable", "__ARI_OFFLOAD_DEPTH", "1"),
        ("continue", "ari-offload-transfer", "operator", "1"),
    ]
    assert call.hangup_reason == "transfer:operator"
    assert media.flushes == 1, "what the stopped action queued is dropped"
    assert call.flow is None


async def test_a_call_leaving_is_not_cut() -> None:
    call, rest, _ = _call()
    flow = await _running(call, [Pause(60)])
    run = call.flow
    assert run is not None

    assert run.transfer("operator")
    assert not run.transfer("operator"), "a second transfer while the first runs"
    await flow
    assert rest.requests.count(("continue", "ari-offload-transfer", "operator", "1")) == 1

    call2, _, _ = _call()
    flow2 = await _running(call2, [Pause(60)])
    assert call2.flow is not None
    call2.hangup_reason = "api"  # a hangup on its way
    assert not call2.flow.transfer("operator")
    call2.state = "transferred:PJSIP/sipp-uas"  # a flow's or an agent's transfer done
    call2.hangup_reason = ""
    assert not call2.flow.transfer("operator")
    flow2.cancel()
    await asyncio.gather(flow2, return_exceptions=True)
    assert call2.flow is None


class Spoken(FlowContext):
    """Keeps what ``speak`` was given instead of synthesizing it."""

    said: list[str]

    async def speak(self, call: ActiveCall, text: str) -> None:
        self.said.append(text)


async def test_say_message_says_the_calls_own_message_else_its_fallback() -> None:
    messages = {"call-1": "Your parcel arrives on Monday."}

    async def find_message(call_id: str) -> str | None:
        return messages.get(call_id)

    ctx = Spoken(
        cast(Settings, None), cast(SpeechModels, None), cast(WebhookClient, None), _no_agent,
        find_message=find_message,
    )  # fmt: skip
    ctx.said = []
    with_message, _, _ = _call()
    without, _, _ = _call()
    without.call_id = "call-2"  # placed without a message (or inbound)

    await run_actions(with_message, [SayMessage(fallback="Hello.")], ctx)
    await run_actions(without, [SayMessage(fallback="Hello.")], ctx)
    await run_actions(without, [SayMessage()], ctx)

    assert ctx.said == ["Your parcel arrives on Monday.", "Hello."]
