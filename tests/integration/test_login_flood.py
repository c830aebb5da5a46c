"""A login flood during a real call: the flood is refused (429) after a bounded number of real
argon2 hashes, and the call's turns go on. Their latencies are logged, not asserted on."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter

import aiohttp
import pytest

from ari_offload.agent.contract import WebhookRequest
from ari_offload.app import App
from ari_offload.sdk.client import Client
from testbed.dialogue import Say, Silence, run_dialogue
from tests.integration.test_api_calls import AGENT, FLOW, SIGNUP, agent_on_9000, post

__all__ = ["agent_on_9000"]  # a fixture, imported to be shared (app is in conftest)

pytestmark = [pytest.mark.integration, pytest.mark.models]

log = logging.getLogger("tests.login_flood")

FLOOD, BURST, BURST_GAP_S = 200, 20, 0.25
# Turn 1 (the baseline) is over by then; the second utterance starts at about 13.5 s, so its
# speech-to-text runs while argon2 works through the flood.
FLOOD_START_S = 12.5


async def _flood(url: str) -> Counter[int]:
    """200 bad logins from one address, in bursts, over a few seconds."""
    statuses: Counter[int] = Counter()
    async with aiohttp.ClientSession() as http:

        async def attempt() -> None:
            body = {"name": "my-agent", "password": "not-the-password"}
            async with http.post(url, json=body) as r:
                statuses[r.status] += 1
                if r.status in (429, 503):
                    assert int(r.headers["Retry-After"]) >= 1

        for _ in range(FLOOD // BURST):
            await asyncio.gather(*(attempt() for _ in range(BURST)))
            await asyncio.sleep(BURST_GAP_S)
    return statuses


async def test_a_login_flood_during_a_call_is_refused_and_the_call_goes_on(
    app: App, agent_on_9000: list[WebhookRequest], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "tests.login_flood")
    base = app.api_url + "/v1.0"
    async with aiohttp.ClientSession() as http:
        token = (await post(http, f"{base}/auth/signup", SIGNUP))["accesskey"]["token"]
        agent = await post(http, f"{base}/agents?accesskey={token}", AGENT)
        flow_body = json.loads(json.dumps(FLOW).replace("AGENT_ID", agent["id"]))
        flow = await post(http, f"{base}/flows?accesskey={token}", flow_body)
    passwords = app.store.customers.passwords
    hashes_before = passwords.hashes

    dialogue = asyncio.create_task(
        run_dialogue(
            f"8{flow['id']}",  # the test bed runs a flow by id
            [
                Silence(3.5),
                Say("I need to reset my password"),
                Silence(8.0),
                Say("What are your opening hours"),
                Silence(8.0),
            ],
        )
    )
    await asyncio.sleep(FLOOD_START_S)
    started = asyncio.get_running_loop().time()
    statuses = await _flood(f"{base}/auth/login")
    flood_s = asyncio.get_running_loop().time() - started
    hashes = passwords.hashes - hashes_before
    result = await dialogue

    log.info(
        "flood: %d logins in %.1f s -> %s; argon2 runs: %d", FLOOD, flood_s, dict(statuses), hashes
    )
    assert set(statuses) <= {401, 429, 503}, statuses
    assert statuses[429] >= FLOOD - 2 * BURST, statuses  # see tests/test_api_throttle.py
    assert hashes <= app.settings.api.login_failures_per_name

    assert result.sipp.ok, result.sipp.output + result.sipp.errors
    wire = result.latencies()
    async with Client(app.api_url, token) as client:
        await asyncio.sleep(0.5)
        (call,) = await client.calls.list()
        detail = await client.calls.get(call.id)
    for turn, when in zip(detail.turns, ("before", "during"), strict=False):
        log.info(
            "turn %d, %s the flood: total %.0f ms (stt %.0f, webhook %.0f, first audio %.0f)",
            turn.turn, when, turn.total_ms or 0, turn.stt_ms or 0, turn.webhook_ms or 0,
            turn.tts_first_audio_ms or 0,
        )  # fmt: skip
    log.info(
        "reply latency on the wire (s): %s", [None if x is None else round(x, 2) for x in wire]
    )
    print("\n".join(r.getMessage() for r in caplog.records if r.name == "tests.login_flood"))
    # The caller was answered each time: the flood did not starve speech.
    assert len(wire) == 2
    assert all(x is not None for x in wire), wire
    assert len(detail.turns) == 2
    assert len(agent_on_9000) == 2
