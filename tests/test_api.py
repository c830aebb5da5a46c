"""The REST API on a real server: the README curl calls, auth, scoping, calls, errors."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ari_offload.api import schemas as s
from ari_offload.api.speech import SPEECH_OFFER
from ari_offload.errors import StoreError
from ari_offload.flows.actions import AiTalk
from ari_offload.schema import Obj
from ari_offload.store import CallStatus, Direction, Role
from ari_offload.turn_fields import WebhookFailure
from tests.api_support import CURL_AGENT, CURL_FLOW, CURL_SIGNUP, ApiEnv, running_api

JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[ApiEnv]:
    async with running_api(tmp_path) as e:
        yield e


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    token: str | None = None,
    body: Any = None,
    spec: Obj | None = None,
    **kw: Any,
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.request(method, url, json=body, headers=headers, **kw) as r:
        data: Any = await r.json() if r.content_length != 0 and r.status != 204 else None
        if spec is not None and r.status < 300:
            spec.check(data, "")  # the response matches its documented schema
        if r.status >= 400:
            assert set(data) == {"error"}
            assert set(data["error"]) == {"code", "message", "field"}
        return r.status, data


async def test_readme_curl_calls_verbatim(env: ApiEnv, http: aiohttp.ClientSession) -> None:
    async with http.post(env.url("/v1.0/auth/signup"), data=CURL_SIGNUP, headers=JSON) as r:
        assert r.status == 201
        token = (await r.json())["accesskey"]["token"]
    async with http.post(
        env.url(f"/v1.0/agents?accesskey={token}"), data=CURL_AGENT, headers=JSON
    ) as r:
        assert r.status == 201
        agent = await r.json()
    s.AGENT.check(agent, "")
    assert agent["name"] == "support-agent"
    assert agent["webhook"] == "http://127.0.0.1:9000/ai-webhook"
    body = CURL_FLOW.replace("AGENT_ID", agent["id"])
    async with http.post(env.url(f"/v1.0/flows?accesskey={token}"), data=body, headers=JSON) as r:
        assert r.status == 201
        flow = await r.json()
    s.FLOW.check(flow, "")
    assert flow["actions"] == [
        {
            "type": "ai_talk",
            "agent_id": agent["id"],
            "welcome_message": "Hello! How can I help you today?",
        }
    ]
    # What the dialplan line Stasis(ari-offload,flow=ID) will find:
    resolved = await env.store.flows.for_call(flow_id=flow["id"])
    assert resolved is not None
    assert resolved.id == flow["id"]
    assert resolved.actions == (AiTalk(agent["id"], "Hello! How can I help you today?"),)


async def test_missing_wrong_revoked_expired_keys_are_401(
    env: ApiEnv, http: aiohttp.ClientSession
) -> None:
    token = await env.signup("alice", "password1")
    agents = env.url("/v1.0/agents")
    async with http.get(agents) as r:
        assert r.status == 401
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        assert "accesskey" in (await r.json())["error"]["message"]
    assert (await call(http, "GET", agents, "ak_wrong"))[0] == 401
    assert (await call(http, "GET", agents + "?accesskey=ak_wrong"))[0] == 401
    async with http.get(agents, headers={"Authorization": f"Basic {token}"}) as r:
        assert r.status == 401
    status, new = await call(
        http, "POST", env.url("/v1.0/accesskeys"), token, {"name": "ci"}, s.NEW_ACCESSKEY
    )
    assert status == 201
    assert (await call(http, "GET", agents, new["token"]))[0] == 200
    status, revoked = await call(
        http, "DELETE", env.url(f"/v1.0/accesskeys/{new['id']}"), token, spec=s.ACCESSKEY
    )
    assert status == 200
    assert revoked["revoked_at"] is not None
    assert (await call(http, "GET", agents, new["token"]))[0] == 401
    key = await env.store.keys.authenticate(token)
    assert key is not None
    expired = await env.store.keys.create(
        key.customer_id, expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    assert (await call(http, "GET", agents, expired.token))[0] == 401
    assert (await call(http, "GET", agents + f"?accesskey={token}"))[0] == 200


async def test_key_expiry_and_listing_never_shows_tokens(
    env: ApiEnv, http: aiohttp.ClientSession
) -> None:
    token = await env.signup("alice", "password1")
    status, new = await call(
        http, "POST", env.url("/v1.0/accesskeys"), token, {"expires_in_s": 3600}
    )
    assert status == 201
    expires = datetime.fromisoformat(new["expires_at"])
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)
    status, listed = await call(
        http, "GET", env.url("/v1.0/accesskeys"), token, spec=s.ACCESSKEY_LIST
    )
    assert len(listed["accesskeys"]) == 2
    assert all("token" not in k for k in listed["accesskeys"])
    assert token not in str(listed)
    status, empty_body = await call(http, "POST", env.url("/v1.0/accesskeys"), token)
    assert status == 201
    assert empty_body["expires_at"] is None


async def test_signup_login_and_disabled_signup(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with running_api(tmp_path / "a") as env:
        await env.signup("alice", "password1")
        status, err = await call(
            http,
            "POST",
            env.url("/v1.0/auth/signup"),
            body={"name": "alice", "password": "password2"},
        )
        assert (status, err["error"]["field"]) == (409, "name")
        status, _ = await call(
            http,
            "POST",
            env.url("/v1.0/auth/login"),
            body={"name": "alice", "password": "wrong-pass"},
        )
        assert status == 401
        status, session = await call(
            http,
            "POST",
            env.url("/v1.0/auth/login"),
            body={"name": "alice", "password": "password1"},
            spec=s.SESSION,
        )
        assert status == 200
        assert (await call(http, "GET", env.url("/v1.0/agents"), session["accesskey"]["token"]))[
            0
        ] == 200
    async with running_api(tmp_path / "b", signup_enabled=False) as env:
        status, err = await call(
            http,
            "POST",
            env.url("/v1.0/auth/signup"),
            body={"name": "bob", "password": "password1"},
        )
        assert (status, err["error"]["code"]) == (403, "signup_disabled")
        await env.store.customers.create("bob", "password1")  # what an operator does
        status, _ = await call(
            http, "POST", env.url("/v1.0/auth/login"), body={"name": "bob", "password": "password1"}
        )
        assert status == 200


async def _agent_and_flow(
    env: ApiEnv, http: aiohttp.ClientSession, token: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    _, agent = await call(
        http,
        "POST",
        env.url("/v1.0/agents"),
        token,
        {"name": "support-agent", "webhook": "http://127.0.0.1:9000/hook"},
    )
    _, flow = await call(
        http,
        "POST",
        env.url("/v1.0/flows"),
        token,
        {"name": "support", "actions": [{"type": "ai_talk", "agent_id": agent["id"]}]},
    )
    return agent, flow


async def test_another_customers_resources_are_404(
    env: ApiEnv, http: aiohttp.ClientSession
) -> None:
    alice, bob = await env.signup("alice", "password1"), await env.signup("bob", "password1")
    agent, flow = await _agent_and_flow(env, http, alice)
    key = await env.store.keys.authenticate(alice)
    assert key is not None
    live = await env.store.calls.create(
        key.customer_id, direction=Direction.IN, flow_id=flow["id"], status=CallStatus.ACTIVE
    )
    bob_keys = (await call(http, "GET", env.url("/v1.0/accesskeys"), bob))[1]["accesskeys"]
    alice_keys = (await call(http, "GET", env.url("/v1.0/accesskeys"), alice))[1]["accesskeys"]
    assert {k["id"] for k in bob_keys}.isdisjoint(k["id"] for k in alice_keys)
    for method, path, body in [
        ("GET", f"/v1.0/agents/{agent['id']}", None),
        ("PATCH", f"/v1.0/agents/{agent['id']}", {"detail": "mine now"}),
        ("DELETE", f"/v1.0/agents/{agent['id']}", None),
        ("GET", f"/v1.0/flows/{flow['id']}", None),
        ("PATCH", f"/v1.0/flows/{flow['id']}", {"name": "stolen"}),
        ("DELETE", f"/v1.0/flows/{flow['id']}", None),
        ("GET", f"/v1.0/calls/{live.id}", None),
        ("POST", f"/v1.0/calls/{live.id}/hangup", None),
        ("POST", f"/v1.0/calls/{live.id}/talk", {"text": "hi"}),
        ("DELETE", f"/v1.0/accesskeys/{alice_keys[0]['id']}", None),
    ]:
        status, err = await call(http, method, env.url(path), bob, body)
        assert (status, err["error"]["code"]) == (404, "not_found"), (method, path)
    for listing in ("agents", "flows", "calls"):
        assert (await call(http, "GET", env.url(f"/v1.0/{listing}"), bob))[1][listing] == []
    status, err = await call(
        http,
        "POST",
        env.url("/v1.0/flows"),
        bob,
        {
            "name": "f",
            "actions": [{"type": "hangup"}, {"type": "ai_talk", "agent_id": agent["id"]}],
        },
    )
    assert (status, err["error"]["field"]) == (422, "actions[1].agent_id")
    status, err = await call(
        http,
        "POST",
        env.url("/v1.0/calls"),
        bob,
        {"destination": "PJSIP/alice", "flow_id": flow["id"]},
    )
    assert (status, err["error"]["field"]) == (422, "flow_id")
    assert env.telephony.hangups == []
    assert env.telephony.talks == []
    assert env.telephony.originated == []


async def test_agents_crud(env: ApiEnv, http: aiohttp.ClientSession) -> None:
    token = await env.signup("alice", "password1")
    agents = env.url("/v1.0/agents")
    status, agent = await call(
        http,
        "POST",
        agents,
        token,
        {
            "name": "a1",
            "webhook": "https://agent.example/hook",
            "secret": "s3cret-of-16-chars",
            "voice": "slow",
            "language": "en-US",
        },
        s.AGENT,
    )
    assert status == 201
    assert agent["has_secret"] is True
    assert "s3cret" not in str(agent)
    assert agent["detail"] == ""
    one = env.url(f"/v1.0/agents/{agent['id']}")
    assert (await call(http, "GET", one, token, spec=s.AGENT))[1] == agent
    status, changed = await call(http, "PATCH", one, token, {"secret": None, "name": "a2"}, s.AGENT)
    assert status == 200
    assert (changed["has_secret"], changed["name"], changed["voice"]) == (
        False,
        "a2",
        "slow",
    )
    await call(http, "POST", agents, token, {"name": "a3", "webhook": "http://127.0.0.1:1/"})
    status, err = await call(http, "PATCH", one, token, {"name": "a3"})
    assert (status, err["error"]["code"], err["error"]["field"]) == (409, "name_taken", "name")
    status, err = await call(
        http, "POST", agents, token, {"name": "a3", "webhook": "http://127.0.0.1:1/"}
    )
    assert (status, err["error"]["code"]) == (409, "name_taken")
    status, listed = await call(http, "GET", agents, token, spec=s.AGENT_LIST)
    assert [a["name"] for a in listed["agents"]] == ["a2", "a3"]
    await call(
        http,
        "POST",
        env.url("/v1.0/flows"),
        token,
        {"name": "f", "actions": [{"type": "ai_talk", "agent_id": agent["id"]}]},
    )
    status, err = await call(http, "DELETE", one, token)
    assert (status, err["error"]["code"]) == (409, "agent_in_use")
    assert "f" in err["error"]["message"]


async def test_an_agent_voice_or_language_the_server_lacks_is_refused_with_the_choices(
    env: ApiEnv, http: aiohttp.ClientSession
) -> None:
    token = await env.signup("alice", "password1")
    agents = env.url("/v1.0/agents")
    body = {"name": "a1", "webhook": "http://127.0.0.1:9/x"}

    status, err = await call(http, "POST", agents, token, {**body, "voice": "en_US-lessac"})
    assert (status, err["error"]["code"], err["error"]["field"]) == (422, "unknown_voice", "voice")
    assert err["error"]["message"] == (
        "voice: 'en_US-lessac' is not a voice of this server; voices: joe, slow"
    )
    status, err = await call(http, "POST", agents, token, {**body, "language": "fr-CA"})
    assert (status, err["error"]["field"]) == (422, "language")
    assert err["error"]["message"].endswith("languages: en")
    assert (await call(http, "GET", agents, token))[1]["agents"] == []  # nothing was stored

    status, agent = await call(
        http, "POST", agents, token, {**body, "voice": "slow", "language": "en-GB"}, s.AGENT
    )
    assert (status, agent["voice"], agent["language"]) == (201, "slow", "en-GB")
    one = env.url(f"/v1.0/agents/{agent['id']}")
    status, err = await call(http, "PATCH", one, token, {"voice": "whisper"})
    assert (status, err["error"]["field"]) == (422, "voice")
    status, agent = await call(http, "PATCH", one, token, {"voice": None, "language": None})
    assert (status, agent["voice"], agent["language"]) == (200, None, None)


async def test_an_agent_speaking_rate_is_kept_changed_cleared_and_bounded(
    env: ApiEnv, http: aiohttp.ClientSession
) -> None:
    token = await env.signup("alice", "password1")
    agents = env.url("/v1.0/agents")
    body = {"name": "a1", "webhook": "http://127.0.0.1:9/x", "voice": "slow"}

    status, agent = await call(http, "POST", agents, token, body, s.AGENT)
    assert (status, agent["speaking_rate"]) == (201, None)  # the voice's own pace
    one = env.url(f"/v1.0/agents/{agent['id']}")
    status, agent = await call(http, "PATCH", one, token, {"speaking_rate": 1.25}, s.AGENT)
    assert (status, agent["speaking_rate"], agent["voice"]) == (200, 1.25, "slow")
    assert (await call(http, "GET", one, token, spec=s.AGENT))[1]["speaking_rate"] == 1.25
    for rate, message in [
        (2.5, "speaking_rate: must be at most 2"),
        (0.25, "speaking_rate: must be at least 0.5"),
        ("fast", "speaking_rate: expected a number"),
    ]:
        status, err = await call(http, "PATCH", one, token, {"speaking_rate": rate})
        assert (status, err["error"]["field"], err["error"]["message"]) == (
            422, "speaking_rate", message
        )  # fmt: skip
        status, err = await call(http, "POST", agents, token, {**body, "speaking_rate": rate})
        assert (status, err["error"]["field"]) == (422, "speaking_rate")
    status, agent = await call(http, "PATCH", one, token, {"speaking_rate": None}, s.AGENT)
    assert (status, agent["speaking_rate"]) == (200, None)
    status, agent = await call(
        http, "POST", agents, token, {**body, "name": "a2", "speaking_rate": 0.5}, s.AGENT
    )
    assert (status, agent["speaking_rate"]) == (201, 0.5)
    listed = (await call(http, "GET", agents, token, spec=s.AGENT_LIST))[1]["agents"]
    assert [(a["name"], a["speaking_rate"]) for a in listed] == [("a1", None), ("a2", 0.5)]


async def test_voices_lists_what_an_agent_may_choose(
    env: ApiEnv, http: aiohttp.ClientSession
) -> None:
    token = await env.signup("alice", "password1")
    status, offer = await call(http, "GET", env.url("/v1.0/voices"), token, None, SPEECH_OFFER)
    assert status == 200
    assert offer == {
        "voices": [{"name": "joe", "default": True}, {"name": "slow", "default": False}],
        "speaking_rate": {"min": 0.5, "max": 2.0, "default": 1.0},
        "languages": ["en"],
    }
    status, err = await call(http, "GET", env.url("/v1.0/voices"), None)
    assert (status, err["error"]["code"]) == (401, "unauthorized")


async def test_flows_crud(env: ApiEnv, http: aiohttp.ClientSession) -> None:
    token = await env.signup("alice", "password1")
    agent, flow = await _agent_and_flow(env, http, token)
    one = env.url(f"/v1.0/flows/{flow['id']}")
    actions = [
        {"type": "talk", "text": "Please hold"},
        {"type": "pause", "seconds": 1.5},
        {"type": "transfer", "target": "operator"},  # named in the test bed's policy
        {"type": "transfer", "target": "desk"},
        {"type": "hangup"},
    ]
    status, changed = await call(http, "PATCH", one, token, {"actions": actions}, s.FLOW)
    assert status == 200
    assert changed["actions"] == actions
    assert changed["name"] == "support"
    status, listed = await call(http, "GET", env.url("/v1.0/flows"), token, spec=s.FLOW_LIST)
    assert [f["id"] for f in listed["flows"]] == [flow["id"]]
    assert (await call(http, "DELETE", env.url(f"/v1.0/agents/{agent['id']}"), token))[0] == 204
    assert (await call(http, "DELETE", one, token))[0] == 204
    assert (await call(http, "GET", one, token))[0] == 404
    assert (await call(http, "DELETE", one, token))[0] == 404


async def test_outbound_call_is_recorded_then_originated(
    env: ApiEnv, http: aiohttp.ClientSession
) -> None:
    token = await env.signup("alice", "password1")
    _, flow = await _agent_and_flow(env, http, token)
    status, made = await call(
        http,
        "POST",
        env.url("/v1.0/calls"),
        token,
        {"destination": "1234", "flow_id": flow["id"], "caller_id": "1000"},
        s.CALL,
    )
    assert status == 201
    assert (made["status"], made["direction"], made["destination"]) == ("ringing", "out", "1234")
    # The test bed policy's default route turns the number into the dial string.
    assert env.telephony.originated == [
        {
            "call_id": made["id"],
            "dial": "PJSIP/1234@sipp-uas",
            "flow_id": flow["id"],
            "caller_id": "1000",
        }
    ]
    recorded = await env.store.calls.get(made["id"], customer_id=None)
    assert recorded is not None
    assert recorded.caller == "1000"


async def test_refused_originate_marks_the_call_failed(
    env: ApiEnv, http: aiohttp.ClientSession
) -> None:
    token = await env.signup("alice", "password1")
    _, flow = await _agent_and_flow(env, http, token)
    env.telephony.refuse = "endpoint PJSIP/nobody not found"
    status, err = await call(
        http,
        "POST",
        env.url("/v1.0/calls"),
        token,
        {"destination": "nobody", "flow_id": flow["id"]},
    )
    assert (status, err["error"]["code"]) == (502, "telephony_error")
    # Asterisk's answer and the dial string are the operator's business, not the tenant's.
    assert "PJSIP" not in err["error"]["message"]
    assert "not found" not in err["error"]["message"]
    _, failed = await call(http, "GET", env.url("/v1.0/calls?status=failed"), token)
    (record,) = failed["calls"]
    assert record["hangup_reason"] == "not placed"
    assert "PJSIP" not in str(record)
    assert record["ended_at"] is not None
    exposition = env.metrics.exposition().decode()
    assert 'ari_offload_calls_total{direction="out",outcome="failed"} 1.0' in exposition


async def test_list_get_hangup_and_talk(env: ApiEnv, http: aiohttp.ClientSession) -> None:
    token = await env.signup("alice", "password1")
    _, flow = await _agent_and_flow(env, http, token)
    key = await env.store.keys.authenticate(token)
    assert key is not None
    calls = env.store.calls
    live = await calls.create(
        key.customer_id,
        direction=Direction.IN,
        flow_id=flow["id"],
        caller="1000",
        destination="7000",
    )
    await calls.set_status(live.id, CallStatus.ACTIVE)
    await calls.add_transcript(live.id, Role.AGENT, "Hello! How can I help you today?")
    await calls.add_transcript(live.id, Role.CALLER, "I need to reset my password")
    await calls.add_turn(
        live.id,
        turn=1,
        endpoint_ms=500,
        stt_ms=612.5,
        webhook_ms=40,
        tts_first_audio_ms=150,
        total_ms=1302.5,
    )
    # A row of today, one from before the failure kinds (a class name), and text that is none.
    for turn, stored in [(2, "status"), (3, "WebhookTimeout"), (4, "SomethingElse")]:
        await calls.add_turn(live.id, turn=turn, webhook_error=stored)
    ringing = await calls.create(key.customer_id, direction=Direction.OUT, flow_id=flow["id"])
    done = await calls.create(key.customer_id, direction=Direction.IN, flow_id=flow["id"])
    await calls.set_status(done.id, CallStatus.ENDED, reason="caller")

    async def listed(query: str) -> set[str]:
        status, data = await call(
            http, "GET", env.url(f"/v1.0/calls{query}"), token, spec=s.CALL_LIST
        )
        assert status == 200
        return {c["id"] for c in data["calls"]}

    assert await listed("") == {live.id, ringing.id, done.id}
    assert await listed("?status=active") == {live.id}
    assert await listed("?status=ringing,active") == {live.id, ringing.id}
    assert await listed("?status=ringing&status=active") == {live.id, ringing.id}
    assert await listed("?status=ended") == {done.id}
    assert len(await listed("?limit=1")) == 1
    assert await listed("?direction=out") == {ringing.id}
    assert await listed("?direction=in&status=active,ended") == {live.id, done.id}
    assert (await call(http, "GET", env.url("/v1.0/calls?direction=up"), token))[0] == 422

    status, detail = await call(
        http, "GET", env.url(f"/v1.0/calls/{live.id}"), token, spec=s.CALL_DETAIL
    )
    assert status == 200
    assert [(e["role"], e["text"]) for e in detail["transcript"]] == [
        ("agent", "Hello! How can I help you today?"),
        ("caller", "I need to reset my password"),
    ]
    assert detail["turns"][0]["stt_ms"] == 612.5
    assert detail["turns"][0]["total_ms"] == 1302.5
    # Always one of the documented kinds (the CALL_DETAIL spec's enum checked them above).
    assert [t["webhook_error"] for t in detail["turns"]] == [None, "status", "timeout", "other"]

    base = env.url(f"/v1.0/calls/{live.id}")
    assert (await call(http, "POST", f"{base}/talk", token, {"text": "One moment"}, s.CALL))[
        0
    ] == 202
    assert env.telephony.talks == [(live.id, "One moment")]
    assert (await call(http, "POST", f"{base}/hangup", token, spec=s.CALL))[0] == 202
    assert env.telephony.hangups == [live.id]
    env.telephony.gone.add(live.id)  # e.g. the call lives on another node
    status, err = await call(http, "POST", f"{base}/hangup", token)
    assert (status, err["error"]["code"]) == (409, "call_not_active")
    for target, verb in ((ringing.id, "talk"), (done.id, "talk"), (done.id, "hangup")):
        status, err = await call(
            http,
            "POST",
            env.url(f"/v1.0/calls/{target}/{verb}"),
            token,
            {"text": "hi"} if verb == "talk" else None,
        )
        assert (status, err["error"]["code"]) == (409, "call_not_active"), (target, verb)


async def test_metrics_exposition(env: ApiEnv, http: aiohttp.ClientSession) -> None:
    m = env.metrics
    m.call_started("in")
    m.call_started("in")
    m.call_ended("in", "completed")
    m.observe_turn(
        endpoint_ms=500, stt_ms=600, webhook_ms=80, tts_first_audio_ms=120, total_ms=1300
    )
    m.webhook_failed(WebhookFailure.TIMEOUT)
    m.rtp_packet_dropped("late", 3)
    async with http.get(env.url("/metrics")) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        text = await r.text()
    for line in (
        'ari_offload_active_calls{direction="in"} 1.0',
        'ari_offload_active_calls{direction="out"} 0.0',
        'ari_offload_calls_total{direction="in",outcome="completed"} 1.0',
        'ari_offload_turn_latency_seconds_count{part="total"} 1.0',
        'ari_offload_turn_latency_seconds_sum{part="stt"} 0.6',
        'ari_offload_turn_latency_seconds_bucket{le="1.5",part="total"} 1.0',
        'ari_offload_webhook_failures_total{kind="timeout"} 1.0',
        'ari_offload_rtp_packets_dropped_total{reason="late"} 3.0',
    ):
        assert line in text, line


async def test_unknown_routes_and_methods_are_json(
    env: ApiEnv, http: aiohttp.ClientSession
) -> None:
    status, err = await call(http, "GET", env.url("/v1.0/nothing"))
    assert (status, err["error"]["code"]) == (404, "not_found")
    async with http.put(env.url("/v1.0/agents")) as r:
        assert r.status == 405
        assert set(r.headers["Allow"].split(",")) == {"GET", "POST"}
        assert (await r.json())["error"]["code"] == "method_not_allowed"


async def test_unexpected_errors_are_logged_500s_without_internals(
    env: ApiEnv,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = await env.signup("alice", "password1")

    async def explode(customer_id: str) -> list[Any]:
        raise RuntimeError("db password=hunter2 in a traceback")

    monkeypatch.setattr(env.store.agents, "list", explode)
    caplog.set_level(logging.ERROR, "ari_offload.api")
    status, err = await call(http, "GET", env.url("/v1.0/agents"), token)
    assert (status, err["error"]["code"]) == (500, "internal_error")
    assert "hunter2" not in str(err)
    assert "hunter2" in caplog.text  # the operator does get the traceback
    ref = err["error"]["message"].split("ref ")[1].split(")")[0]
    assert ref in caplog.text

    async def down(customer_id: str) -> list[Any]:
        raise StoreError("database error: OperationalError")

    monkeypatch.setattr(env.store.agents, "list", down)
    status, err = await call(http, "GET", env.url("/v1.0/agents"), token)
    assert (status, err["error"]["code"]) == (503, "store_unavailable")


async def test_dns_rebinding_guard_on_loopback(env: ApiEnv, http: aiohttp.ClientSession) -> None:
    async with http.post(
        env.url("/v1.0/auth/signup"), data=CURL_SIGNUP, headers={**JSON, "Host": "attacker.example"}
    ) as r:
        assert r.status == 403
        assert (await r.json())["error"]["code"] == "forbidden_host"
    port = env.base_url.rsplit(":", 1)[1]
    async with http.get(env.url("/metrics"), headers={"Host": f"localhost:{port}"}) as r:
        assert r.status == 200


async def test_secrets_never_reach_the_logs(
    env: ApiEnv, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = await env.signup("alice", "correct-horse-battery")
    await call(
        http,
        "POST",
        env.url("/v1.0/auth/login"),
        body={"name": "alice", "password": "wrong-horse-battery"},
    )
    await call(http, "GET", env.url(f"/v1.0/agents?accesskey={token}"))
    await call(http, "GET", env.url("/v1.0/agents"), token)
    await call(
        http,
        "POST",
        env.url("/v1.0/agents"),
        token,
        {"name": "a", "webhook": "http://127.0.0.1:9/x", "secret": "agent-secret-16-chars"},
    )
    assert "/v1.0/agents" in caplog.text  # the access log did record the requests
    for secret in (token, "correct-horse-battery", "wrong-horse-battery", "agent-secret-16-chars"):
        assert secret not in caplog.text
