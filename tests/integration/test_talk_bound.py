"""A tenant flooding `talk` into a live call: the excess is 429 and the call stays up."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ari_offload.app import App
from ari_offload.sdk.client import ApiError, Client
from ari_offload.voice.turn_taker import MAX_QUEUED_TALKS
from testbed.audio import silence_file
from testbed.sipp import SippCall
from tests.integration.conftest import free_port

pytestmark = [pytest.mark.integration, pytest.mark.models]

LONG_TEXT = "Your order has been shipped today and will arrive at your door on Friday morning."


@pytest.mark.parametrize("flow", ["ai_talk", "pause"])
async def test_talk_past_the_bound_is_429_and_the_call_stays_up(app: App, flow: str) -> None:
    async with await Client.signup(app.api_url, "flood", "flood-password") as client:
        actions: list[dict[str, Any]]
        if flow == "ai_talk":  # texts go into the conversation's inbox
            # The caller stays silent, so the webhook is never asked anything.
            agent = await client.agents.create(
                name="quiet", detail="", webhook=f"http://127.0.0.1:{free_port()}/hook"
            )
            actions = [{"type": "ai_talk", "agent_id": agent.id}]
        else:  # no conversation: texts go to the call's one background speaker
            actions = [{"type": "pause", "seconds": 30}]
        flow_record = await client.flows.create("flood-flow", actions)
        call = SippCall(f"8{flow_record.id}", silence_file(10.0), hangup_after_s=40)
        await call.start()
        async with asyncio.timeout(15):
            while not (live := await client.calls.list(status="active")):
                await asyncio.sleep(0.2)
        call_id = live[0].id

        accepted, refused = 0, []
        for _ in range(MAX_QUEUED_TALKS + 4):
            try:
                await client.calls.talk(call_id, LONG_TEXT)
                accepted += 1
            except ApiError as exc:
                refused.append((exc.status, exc.code))
        still = await client.calls.get(call_id)
        await client.calls.hangup(call_id)
        result = await call.wait()

    # One text may already be playing; MAX_QUEUED_TALKS more wait; the rest are refused.
    assert MAX_QUEUED_TALKS <= accepted <= MAX_QUEUED_TALKS + 1
    assert refused == [(429, "talk_queue_full")] * (MAX_QUEUED_TALKS + 4 - accepted)
    assert still.status == "active", "the flood did not end the call"
    assert result.ok, result.output + result.errors
