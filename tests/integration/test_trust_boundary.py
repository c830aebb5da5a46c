"""Issue 7's attacks, on the real test bed: nothing reaches the PBX unless the operator allows it.

Each attack was accepted by main before the policy: `POST /calls` originated whatever dial
string a tenant sent, flows could transfer anywhere, and a flow name looked up across tenants
let tenant B capture or break tenant A's route.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ari_offload.agent.contract import WebhookRequest
from ari_offload.agent.sample import RECEIVED_KEY, make_sample_agent_app
from ari_offload.app import OVER_QUOTA_TEXT, UNKNOWN_FLOW_TEXT, App
from ari_offload.config import ApiSettings, PolicySettings, Settings, StoreSettings
from ari_offload.sdk.client import ApiError, Client
from ari_offload.speech.models import SpeechModels
from testbed.asterisk import TESTBED_ARI, TESTBED_POLICY_FILE, Testbed
from testbed.audio import silence_file
from testbed.capture import RtpCapture
from testbed.dialogue import Say, Silence, bursts, run_dialogue
from testbed.sipp import SippCall
from tests.integration.conftest import free_port
from tests.integration.helpers import sounds_like

pytestmark = pytest.mark.integration

# Every destination of issue 7's toll-fraud list, and a few more a tenant might try.
ATTACK_DESTINATIONS = [
    "Local/0900123@from-internal",
    "PJSIP/+4490012@carrier-trunk",
    "IAX2/u:p@host/123",
    "PJSIP/alice/sip:1900@203.0.113.9",
    "DAHDI/g1/123",
    "123@other-trunk",
    "+19005551234",  # premium, denied by the route
    "0044123456789",  # international access prefix, denied
    "19005551234",
    "1234,call_id=x",
    "PJSIP/sipp-uas",  # a real endpoint, but by dial string instead of the operator's name
]


class ChannelWatch:
    """Polls `core show channels` on the Asterisk CLI and keeps every channel name it saw."""

    def __init__(self, bed: Testbed) -> None:
        self._bed = bed
        self.seen: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ChannelWatch:
        self._task = asyncio.create_task(self._poll())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.sleep(1.0)  # a channel the attempt started would show up by now
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _poll(self) -> None:
        while True:
            self.seen.update(await self._bed.channel_names())
            await asyncio.sleep(0.05)


async def admin_token(app: App) -> str:
    return (await app.store.admin_keys.create("test operator")).token


async def admin(app: App, method: str, path: str, token: str, body: Any = None) -> Any:
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http,
        http.request(method, f"{app.api_url}/v1.0/admin{path}", json=body) as resp,
    ):
        assert resp.status < 300, await resp.text()
        return await resp.json() if resp.status != 204 else None


@contextlib.asynccontextmanager
async def sample_agent() -> AsyncIterator[tuple[str, list[WebhookRequest]]]:
    agent = make_sample_agent_app()
    runner = web.AppRunner(agent)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/ai-webhook", agent[RECEIVED_KEY]
    finally:
        await runner.cleanup()


async def test_refused_destinations_and_caller_ids_never_make_a_channel(
    app: App, testbed: Testbed
) -> None:
    async with await Client.signup(app.api_url, "mallory", "mallory-password") as mallory:
        flow = await mallory.flows.create("f", [{"type": "talk", "text": "Hello."}])
        refused: dict[str, tuple[int, str, str | None]] = {}
        async with ChannelWatch(testbed) as watch:
            for destination in ATTACK_DESTINATIONS:
                with pytest.raises(ApiError) as err:
                    await mallory.calls.create(destination, flow.id)
                refused[destination] = (err.value.status, err.value.message, err.value.field)
            for caller_id in ('"Bank" <+18005551234>', "+18005551234", "1000;x"):
                with pytest.raises(ApiError) as err:
                    await mallory.calls.create("1234", flow.id, caller_id=caller_id)
                refused[caller_id] = (err.value.status, err.value.message, err.value.field)
            with pytest.raises(ApiError) as err:  # a route the operator did not give this tenant
                await mallory.calls.create("1234", flow.id, route="carrier")
            refused["route carrier"] = (err.value.status, err.value.message, err.value.field)
        failed = await mallory.calls.list()

    assert watch.seen == set(), f"a refused call reached Asterisk: {watch.seen}"
    for what, (status, message, field) in refused.items():
        assert status in (403, 422), (what, status, message)
        assert "policy rule" in message or status == 422, (what, message)
        assert field in ("destination", "caller_id", "route"), (what, field)
    assert "outbound.routes.testbed.deny" in refused["+19005551234"][1]
    assert "tenant.caller_ids" in refused["+18005551234"][1]
    assert failed == [], "a refused request left a call record"


async def test_transfers_name_only_the_operators_targets(app: App) -> None:
    async with await Client.signup(app.api_url, "mallory", "mallory-password") as mallory:
        for action, field in (
            ({"type": "transfer", "context": "from-internal", "extension": "00900"}, "target"),
            ({"type": "transfer", "endpoint": "Local/8loop@from-test"}, "target"),
            ({"type": "transfer", "target": "PJSIP/alice"}, "target"),
        ):
            with pytest.raises(ApiError) as err:
                await mallory.flows.create("t", [action])
            assert (err.value.status, err.value.field) == (422, f"actions[0].{field}")
        with pytest.raises(ApiError) as err:
            await mallory.flows.create("t", [{"type": "transfer", "target": "premium-line"}])
        assert (err.value.status, err.value.code) == (403, "policy_refused")
        assert err.value.field == "actions[0].target"
        ok = await mallory.flows.create("t", [{"type": "transfer", "target": "operator"}])
        assert ok.actions[0].type == "transfer"


async def test_two_tenants_with_the_same_flow_name_never_get_each_others_callers(
    app: App, speech_models: SpeechModels
) -> None:
    token = await admin_token(app)
    async with (
        sample_agent() as (hook_a, heard_by_a),
        sample_agent() as (hook_b, heard_by_b),
        await Client.signup(app.api_url, "alice-co", "alice-password") as alice,
        await Client.signup(app.api_url, "bob-co", "bob-password1") as bob,
    ):
        agent_a = await alice.agents.create(name="a", detail="", webhook=hook_a)
        flow_a = await alice.flows.create("support", [{"type": "ai_talk", "agent_id": agent_a.id}])
        agent_b = await bob.agents.create(name="b", detail="", webhook=hook_b)
        # Bob names flows like Alice's route and like her number: neither may matter.
        await bob.flows.create("support", [{"type": "ai_talk", "agent_id": agent_b.id}])
        await bob.flows.create("9001", [{"type": "ai_talk", "agent_id": agent_b.id}])
        tenants = {
            t["name"]: t["id"] for t in (await admin(app, "GET", "/tenants", token))["tenants"]
        }
        await admin(app, "PUT", "/numbers/9001", token,
                    {"tenant_id": tenants["alice-co"], "flow_id": flow_a.id})  # fmt: skip

        to_alice = await run_dialogue(
            "9001", [Silence(2.0), Say("I need to reset my password"), Silence(4.0)]
        )
        by_name = await run_dialogue("8support", [Silence(6.0)])
        await asyncio.sleep(0.5)
        alice_calls = await alice.calls.list()
        bob_calls = await bob.calls.list()

    assert to_alice.sipp.ok, to_alice.sipp.output + to_alice.sipp.errors
    assert len(heard_by_a) == 1
    assert "password" in heard_by_a[0].text.lower()
    assert heard_by_b == [], "Bob's agent got a caller of Alice's number"
    assert [c.direction for c in alice_calls] == ["in"]
    assert bob_calls == []
    # A flow name from the dialplan is nobody's: the caller hears the apology.
    assert by_name.sipp.ok, by_name.sipp.output + by_name.sipp.errors
    assert by_name.agent, "the caller of a flow name heard nothing"
    said = speech_models.transcriber.transcribe(by_name.agent[0].pcm)
    assert sounds_like(said, UNKNOWN_FLOW_TEXT), said


async def test_a_tenant_over_its_concurrent_quota_is_refused_inbound_and_outbound(
    app: App, speech_models: SpeechModels
) -> None:
    token = await admin_token(app)
    async with await Client.signup(app.api_url, "small-co", "small-password") as small:
        flow = await small.flows.create(
            "hold", [{"type": "talk", "text": "Please hold."}, {"type": "pause", "seconds": 30}]
        )
        (tenant,) = [t for t in (await admin(app, "GET", "/tenants", token))["tenants"]]
        await admin(app, "PUT", f"/tenants/{tenant['id']}/rules", token, {"concurrent_calls": 1})
        await admin(app, "PUT", "/numbers/9002", token,
                    {"tenant_id": tenant["id"], "flow_id": flow.id})  # fmt: skip
        first = SippCall("9002", silence_file(12.0), hangup_after_s=12)
        await first.start()
        async with asyncio.timeout(10):
            while not await small.calls.list(status="active"):
                await asyncio.sleep(0.2)
        second = SippCall("9002", silence_file(15.0), hangup_after_s=15)
        capture = RtpCapture(second.media_port)
        await capture.start()
        second_result = await second.run()
        await capture.stop()
        with pytest.raises(ApiError) as outbound:
            await small.calls.create("sipp-uas", flow.id)
        first_result = await first.wait()
        calls = await small.calls.list()

    assert first_result.ok, first_result.output + first_result.errors
    assert second_result.ok, second_result.output + second_result.errors
    heard = bursts(capture.received(), speech_models_decode(), gap_s=1.0)
    assert heard, "the refused caller heard nothing"
    said = speech_models.transcriber.transcribe(heard[0].pcm)
    assert sounds_like(said, OVER_QUOTA_TEXT), said
    assert capture.packets[-1].time - capture.packets[0].time < 10, "we hung up the 2nd call"
    assert (outbound.value.status, outbound.value.code) == (429, "quota_exceeded")
    assert "tenant.concurrent_calls" in outbound.value.message
    reasons = sorted(c.hangup_reason or "" for c in calls)
    assert "quota: tenant.concurrent_calls" in reasons


async def test_a_call_over_the_tenants_max_duration_is_hung_up(app: App) -> None:
    token = await admin_token(app)
    async with await Client.signup(app.api_url, "short-co", "short-password") as short:
        flow = await short.flows.create("hold", [{"type": "pause", "seconds": 30}])
        (tenant,) = (await admin(app, "GET", "/tenants", token))["tenants"]
        await admin(app, "PUT", f"/tenants/{tenant['id']}/rules", token, {"max_call_duration_s": 2})
        await admin(app, "PUT", "/numbers/9003", token,
                    {"tenant_id": tenant["id"], "flow_id": flow.id})  # fmt: skip
        call = SippCall("9003", silence_file(20.0), hangup_after_s=20)
        capture = RtpCapture(call.media_port)
        await capture.start()
        started = asyncio.get_running_loop().time()
        result = await call.run()
        lasted = asyncio.get_running_loop().time() - started
        await capture.stop()
        await asyncio.sleep(0.5)
        (record,) = await short.calls.list()

    assert result.ok, result.output + result.errors
    print(f"call with a 2 s limit lasted {lasted:.1f} s on the SIPp side")
    assert lasted < 15, "the caller's own 20 s hangup came first: the limit did not apply"
    assert record.hangup_reason == "max-duration"


def speech_models_decode() -> Any:
    from ari_offload.media.g711 import ULAW

    return ULAW.decode


async def test_the_servers_ceiling_holds_for_calls_no_tenant_owns(
    testbed: Testbed, speech_models: SpeechModels, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    # Built-in flows and unassigned numbers have no call record; the server-wide ceiling of
    # calls in progress must hold for them too (a SIP flood of 7000 answers nothing beyond it).
    policy = tmp_path / "policy.toml"
    policy.write_text(
        TESTBED_POLICY_FILE.read_text().replace(
            "[quotas]\nconcurrent_calls = 20", "[quotas]\nconcurrent_calls = 1"
        )
    )
    settings = Settings(
        ari=TESTBED_ARI, api=ApiSettings(port=free_port()),
        store=StoreSettings(data_dir=tmp_path / "data"), policy=PolicySettings(file=policy),
    )  # fmt: skip
    app = await App.start(settings, models=speech_models)
    try:
        await app.service.wait_connected()
        first = SippCall("7000", silence_file(8.0), hangup_after_s=8)
        await first.start()
        async with asyncio.timeout(10):
            while not app.service.controller.calls:
                await asyncio.sleep(0.1)
        caplog.set_level(logging.WARNING, "ari_offload.ari")
        second = await SippCall("7000", silence_file(3.0), hangup_after_s=3).run()
        first_result = await first.wait()
    finally:
        await app.stop()

    assert first_result.ok, first_result.output + first_result.errors
    assert not second.ok, "the call over the server's ceiling was answered"
    assert "the server allows 1 ([quotas] concurrent_calls)" in caplog.text
