"""The Python SDK against a real server: the README steps, CRUD, calls, errors."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ari_offload.flows.actions import Action, AiTalk, Hangup, Pause, Talk, Transfer
from ari_offload.sdk.client import ApiError, Client
from ari_offload.store import CallStatus, Role
from tests.api_support import ApiEnv, running_api


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[ApiEnv]:
    async with running_api(tmp_path) as e:
        yield e


async def test_readme_steps_with_the_sdk(env: ApiEnv) -> None:
    async with await Client.signup(env.base_url, "my-agent", "yourpassword") as client:
        assert client.accesskey.startswith("ak_")
        agent = await client.agents.create(
            "support-agent",
            detail="AI-powered customer support agent",
            webhook="http://127.0.0.1:9000/ai-webhook",
        )
        flow = await client.flows.create(
            "support-flow",
            [
                {
                    "type": "ai_talk",
                    "agent_id": agent.id,
                    "welcome_message": "Hello! How can I help you today?",
                }
            ],
        )
    assert flow.actions == (AiTalk(agent.id, "Hello! How can I help you today?"),)
    assert agent.detail == "AI-powered customer support agent"
    resolved = await env.store.flows.for_call(flow_id=flow.id)
    assert resolved is not None
    assert resolved.id == flow.id


async def test_login_and_access_keys(env: ApiEnv) -> None:
    await (await Client.signup(env.base_url + "/v1.0/", "alice", "password1")).close()
    with pytest.raises(ApiError) as err:
        await Client.login(env.base_url, "alice", "wrong-password")
    assert (err.value.status, err.value.code) == (401, "unauthorized")
    async with await Client.login(env.base_url, "alice", "password1") as client:
        extra = await client.accesskeys.create("ci", expires_in_s=600)
        assert extra.token is not None
        assert extra.expires_at is not None
        assert extra.token not in repr(extra)
        assert {k.name for k in await client.accesskeys.list()} == {"signup", "login", "ci"}
        revoked = await client.accesskeys.revoke(extra.id)
        assert revoked.revoked_at is not None
    async with Client(env.base_url, extra.token) as stale:
        with pytest.raises(ApiError) as err:
            await stale.agents.list()
        assert err.value.status == 401


async def test_agents_and_flows_crud(env: ApiEnv) -> None:
    async with await Client.signup(env.base_url, "alice", "password1") as client:
        agent = await client.agents.create(
            "a1", webhook="http://127.0.0.1:9/x", secret="a-secret-of-16-chars", language="en"
        )
        assert agent.has_secret
        assert await client.agents.get(agent.id) == agent
        changed = await client.agents.update(agent.id, secret=None, detail="new")
        assert (changed.has_secret, changed.detail, changed.language) == (False, "new", "en")
        assert changed.events_url is None
        events = "http://127.0.0.1:9/events"
        assert (await client.agents.update(agent.id, events_url=events)).events_url == events
        assert (await client.agents.update(agent.id, detail="x")).events_url == events
        assert (await client.agents.update(agent.id, events_url=None)).events_url is None
        assert agent.speaking_rate is None
        assert (await client.agents.update(agent.id, speaking_rate=1.5)).speaking_rate == 1.5
        assert (await client.agents.update(agent.id, detail="y")).speaking_rate == 1.5
        assert (await client.agents.update(agent.id, speaking_rate=None)).speaking_rate is None
        with pytest.raises(ApiError) as err:
            await client.agents.create("a2", webhook="http://127.0.0.1:9/x", speaking_rate=3.0)
        assert (err.value.status, err.value.field) == (422, "speaking_rate")
        with pytest.raises(ApiError) as err:
            await client.agents.create("a2", webhook="http://127.0.0.1:9/x", events_url="ftp://x")
        assert (err.value.status, err.value.field) == (422, "events_url")
        assert [a.id for a in await client.agents.list()] == [agent.id]
        assert await client.agents.voices() == (("joe", "slow"), ("en",))  # the server's offer
        actions: list[Action] = [
            Talk("Please hold"),
            Pause(1.5),
            AiTalk(agent.id),
            Transfer("operator"),  # a target of the test bed's policy
            Hangup(),
        ]
        flow = await client.flows.create("f1", actions)
        assert flow.actions == tuple(actions)
        renamed = await client.flows.update(flow.id, name="f2")
        assert (renamed.name, renamed.actions) == ("f2", tuple(actions))
        replaced = await client.flows.update(flow.id, actions=[Hangup()])
        assert replaced.actions == (Hangup(),)
        assert [f.name for f in await client.flows.list()] == ["f2"]
        await client.flows.delete(flow.id)
        await client.agents.delete(agent.id)
        with pytest.raises(ApiError) as err:
            await client.agents.get(agent.id)
        assert (err.value.status, err.value.code) == (404, "not_found")
        with pytest.raises(ApiError) as err:
            await client.flows.create("bad", [{"type": "pause", "seconds": 0}])
        assert (err.value.status, err.value.field) == (422, "actions[0].seconds")
        with pytest.raises(ApiError) as err:
            await client.agents.get("../flows")  # an id stays one path segment
        assert err.value.status == 404


async def test_calls(env: ApiEnv) -> None:
    async with await Client.signup(env.base_url, "alice", "password1") as client:
        flow = await client.flows.create("say", [Talk("Your order shipped"), Hangup()])
        made = await client.calls.create("1200", flow.id, caller_id="1000", route="testbed")
        assert (made.status, made.direction, made.destination) == ("ringing", "out", "1200")
        assert env.telephony.originated[0]["dial"] == "PJSIP/1200@sipp-uas"
        assert env.telephony.originated[0]["call_id"] == made.id
        # The controller's side of the story, through the store:
        await env.store.calls.set_status(made.id, CallStatus.ACTIVE)
        await env.store.calls.add_transcript(made.id, Role.SYSTEM, "Your order shipped")
        await env.store.calls.add_turn(made.id, turn=1, total_ms=900.0)
        assert [c.id for c in await client.calls.list("active")] == [made.id]
        assert [c.id for c in await client.calls.list(["ringing", "active"], limit=5)] == [made.id]
        detail = await client.calls.get(made.id)
        assert [(t.role, t.text) for t in detail.transcript] == [("system", "Your order shipped")]
        assert detail.turns[0].total_ms == 900.0
        assert (await client.calls.talk(made.id, "One more thing")).id == made.id
        assert env.telephony.talks == [(made.id, "One more thing")]
        await client.calls.hangup(made.id)
        assert env.telephony.hangups == [made.id]
        await env.store.calls.set_status(made.id, CallStatus.ENDED, reason="api")
        assert await client.calls.list("active") == []
        assert [c.status for c in await client.calls.list("ended")] == ["ended"]
        with pytest.raises(ApiError) as err:
            await client.calls.hangup(made.id)
        assert (err.value.status, err.value.code) == (409, "call_not_active")


async def test_unreachable_server_is_an_api_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connection refused
        async with Client(f"http://127.0.0.1:{port}", "ak_x", timeout_s=2) as client:
            with pytest.raises(ApiError) as err:
                await client.agents.list()
    assert err.value.code == "unreachable"
