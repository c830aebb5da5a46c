"""Call quotas through the API: refusals never count as calls, and deleting calls resets nothing.

Found in review: refused attempts were kept as failed rows that the per-minute windows
counted, so one tenant hammering its own quota filled the server-wide window and locked every
other tenant out; and deleting ended calls reset a tenant's calls-per-minute count.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ari_offload.policy_file import parse_policy
from ari_offload.store import CallStatus
from tests.api_support import ApiEnv, running_api

POLICY: dict[str, Any] = {
    "outbound": {
        "default_route": "r",
        "routes": {"r": {"dial": "PJSIP/{number}@trunk", "allow": ["_1XXX"]}},
    },
    "quotas": {"concurrent_calls": 50, "calls_per_minute": 10},
    "tenant": {"routes": ["r"], "concurrent_calls": 1, "calls_per_minute": 3},
    "egress": {"allow": ["127.0.0.1/32"]},
}


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[ApiEnv]:
    async with running_api(tmp_path, policy=parse_policy(POLICY)) as e:
        yield e


async def _place(http: aiohttp.ClientSession, env: ApiEnv, token: str) -> tuple[int, Any]:
    async with http.post(
        env.url("/v1.0/flows"), json={"name": "f", "actions": [{"type": "hangup"}]},
        headers={"Authorization": f"Bearer {token}"},
    ) as r:  # fmt: skip
        if r.status == 201:
            flow_id = (await r.json())["id"]
        else:
            async with http.get(
                env.url("/v1.0/flows"), headers={"Authorization": f"Bearer {token}"}
            ) as listed:
                flow_id = (await listed.json())["flows"][0]["id"]
    async with http.post(
        env.url("/v1.0/calls"), json={"destination": "1234", "flow_id": flow_id},
        headers={"Authorization": f"Bearer {token}"},
    ) as r:  # fmt: skip
        return r.status, await r.json()


async def test_one_tenant_hammering_its_quota_does_not_lock_out_the_others(env: ApiEnv) -> None:
    mallory = await env.signup("mallory", "password1")
    alice = await env.signup("alice", "password1")
    async with aiohttp.ClientSession() as http:
        first, _ = await _place(http, env, mallory)  # ringing: her one concurrent call
        refused = [(await _place(http, env, mallory))[0] for _ in range(30)]
        alices, made = await _place(http, env, alice)
        async with http.get(
            env.url("/v1.0/calls"), headers={"Authorization": f"Bearer {mallory}"}
        ) as r:
            mallorys_calls = (await r.json())["calls"]

    assert first == 201
    assert set(refused) == {429}
    # 30 refusals > the server's 10 per minute: had they counted, Alice would be refused too.
    assert alices == 201, made
    assert len(mallorys_calls) == 1, "refused attempts left call records behind"


async def test_deleting_calls_does_not_reset_the_calls_per_minute_quota(env: ApiEnv) -> None:
    token = await env.signup("mallory", "password1")
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        for _ in range(3):  # the tenant's 3 per minute, each ended at once
            status, call = await _place(http, env, token)
            assert status == 201, call
            await env.store.calls.set_status(call["id"], CallStatus.ENDED, reason="test")
            async with http.delete(env.url(f"/v1.0/calls/{call['id']}")) as r:
                assert r.status == 409
                assert (await r.json())["error"]["code"] == "call_too_recent"
                assert int(r.headers["Retry-After"]) >= 1
        status, refused = await _place(http, env, token)

    assert status == 429
    assert "tenant.calls_per_minute" in refused["error"]["message"]
