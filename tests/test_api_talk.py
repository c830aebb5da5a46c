"""`POST /calls/{id}/talk` into a call whose talk inbox is full: 429, and nothing queued."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from ari_offload.store import CallStatus, Direction
from tests.api_support import running_api


async def test_a_full_talk_inbox_is_429_with_retry_after(tmp_path: Path) -> None:
    async with running_api(tmp_path) as env, aiohttp.ClientSession() as http:
        token = await env.signup("talker", "password1")
        key = await env.store.keys.authenticate(token)
        assert key is not None
        live = await env.store.calls.create(key.customer_id, direction=Direction.IN, flow_id=None)
        await env.store.calls.set_status(live.id, CallStatus.ACTIVE)
        url = env.url(f"/v1.0/calls/{live.id}/talk")
        auth = {"Authorization": f"Bearer {token}"}

        async with http.post(url, json={"text": "One moment"}, headers=auth) as r:
            assert r.status == 202, await r.text()
        env.telephony.full.add(live.id)
        async with http.post(url, json={"text": "Are you there?"}, headers=auth) as r:
            assert r.status == 429, await r.text()
            body = await r.json()
            retry_after = r.headers.get("Retry-After", "")

    assert body["error"]["code"] == "talk_queue_full"
    assert "queued" in body["error"]["message"]
    assert retry_after.isdigit()
    assert int(retry_after) > 0
    assert env.telephony.talks == [(live.id, "One moment")], "the refused text was not queued"
