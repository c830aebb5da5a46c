"""Login/signup floods are refused before any password hash; keys have a lifetime and a cap;
ended calls can be deleted. A real server, real argon2 (cheap parameters), real sockets: other
client addresses are other loopback addresses (127.0.0.2, 127.0.0.3)."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import aiohttp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import text

from ari_offload.config import ApiSettings
from ari_offload.sdk.client import ApiError, Client
from ari_offload.store import CallStatus, Direction, Role
from ari_offload.store._db import utcnow
from tests.api_support import ApiEnv, running_api

LIMITS = ApiSettings(host="127.0.0.1", port=0)  # the defaults: 20 per IP, 10 per name
FLOOD, BURST = 200, 20


class CountingHasher(PasswordHasher):
    """Real argon2id (cheap parameters) that counts every hash and verification it runs."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.runs = 0
        self.gate = threading.Event()
        self.gate.set()

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.runs += 1
        return super().hash(password, salt=salt)

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.runs += 1
        self.gate.wait(10)
        return super().verify(hash, password)


@pytest.fixture
def hasher() -> CountingHasher:
    return CountingHasher()


@pytest.fixture
async def env(tmp_path: Path, hasher: CountingHasher) -> AsyncIterator[ApiEnv]:
    async with running_api(tmp_path, settings=LIMITS, password_hasher=hasher) as e:
        yield e


def session(source_ip: str = "127.0.0.1") -> aiohttp.ClientSession:
    """A client whose connections come from ``source_ip`` (any address in 127/8 works)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source_ip, 0)))


async def post(
    http: aiohttp.ClientSession, url: str, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], str | None]:
    async with http.post(url, json=body, headers=headers) as r:
        data: dict[str, Any] = await r.json()
        if r.status >= 400:
            assert set(data["error"]) == {"code", "message", "field"}
        return r.status, data, r.headers.get("Retry-After")


async def flood(
    http: aiohttp.ClientSession, url: str, names: list[str], headers: dict[str, str] | None = None
) -> list[tuple[int, dict[str, Any], str | None]]:
    """FLOOD bad logins in bursts of BURST concurrent requests, as fast as the server answers."""
    answers = []
    for start in range(0, len(names), BURST):
        answers += await asyncio.gather(
            *(
                post(http, url, {"name": n, "password": "wrong-password"}, headers)
                for n in names[start : start + BURST]
            )
        )
    return answers


async def bad_login(
    env: ApiEnv, http: aiohttp.ClientSession, name: str, headers: dict[str, str]
) -> int:
    """One at a time: each failure is counted before the next attempt."""
    body = {"name": name, "password": "wrong-password"}
    return (await post(http, env.url("/v1.0/auth/login"), body, headers))[0]


def assert_limited(answers: list[tuple[int, dict[str, Any], str | None]]) -> None:
    statuses = Counter(status for status, _, _ in answers)
    assert set(statuses) <= {401, 429, 503}, statuses
    # Logins under way count against the limit, so a burst cannot overshoot it; refusals for
    # a full hash queue (503) give no verdict and do not count.
    assert statuses[429] >= FLOOD - 2 * BURST, statuses
    for status, data, retry_after in answers:
        if status in (429, 503):
            assert retry_after is not None
            assert int(retry_after) >= 1
        if status == 429:
            assert data["error"]["code"] == "rate_limited"
    assert answers[-1][0] == 429  # still refused at the end of the flood


async def test_a_login_flood_on_one_name_is_429_before_any_hash(
    env: ApiEnv, hasher: CountingHasher
) -> None:
    await env.signup("alice", "alice-password")
    await env.signup("bob", "bob-password")
    before = hasher.runs
    async with session() as http:
        answers = await flood(http, env.url("/v1.0/auth/login"), ["alice"] * FLOOD)
        assert_limited(answers)
        # Without the limit each of the 200 would have cost a hash.
        assert hasher.runs - before <= LIMITS.login_failures_per_name
        _, _, retry_after = answers[-1]
        assert int(retry_after or 0) <= LIMITS.login_window_s
        ok = {"name": "bob", "password": "bob-password"}
        assert (await post(http, env.url("/v1.0/auth/login"), ok))[0] == 200  # IP is below 20
    async with session("127.0.0.2") as other:
        status, data, _ = await post(other, env.url("/v1.0/auth/login"), ok)
        assert status == 200
        assert data["accesskey"]["token"].startswith("ak_")
        # The attacked name stays blocked from everywhere until its block ends.
        right = {"name": "alice", "password": "alice-password"}
        assert (await post(other, env.url("/v1.0/auth/login"), right))[0] == 429


async def test_spraying_many_names_from_one_address_is_limited_per_address(
    env: ApiEnv, hasher: CountingHasher
) -> None:
    await env.signup("bob", "bob-password")
    before = hasher.runs
    async with session() as http:
        answers = await flood(http, env.url("/v1.0/auth/login"), [f"n{i}" for i in range(FLOOD)])
        assert_limited(answers)
        # +1: unknown names are checked against one dummy hash, made once.
        assert hasher.runs - before <= LIMITS.login_failures_per_ip + 1
        ok = {"name": "bob", "password": "bob-password"}
        assert (await post(http, env.url("/v1.0/auth/login"), ok))[0] == 429
    async with session("127.0.0.3") as other:
        assert (await post(other, env.url("/v1.0/auth/login"), ok))[0] == 200


async def test_x_forwarded_for_is_ignored_unless_trusted(tmp_path: Path) -> None:
    names = [f"n{i}" for i in range(60)]
    async with running_api(tmp_path / "a", settings=LIMITS) as env, session() as http:
        spoofed = [
            await bad_login(env, http, name, {"X-Forwarded-For": f"198.51.100.{i}"})
            for i, name in enumerate(names)
        ]
        assert spoofed[-1] == 429  # one peer, whatever the header says
    trusting = ApiSettings(host="127.0.0.1", port=0, trust_x_forwarded_for=True)
    async with running_api(tmp_path / "b", settings=trusting) as env, session() as http:
        proxied = [
            await bad_login(env, http, name, {"X-Forwarded-For": "203.0.113.7"}) for name in names
        ]
        assert proxied[-1] == 429
        # The proxy appends the peer it saw: the last entry is the client.
        other_client = {"X-Forwarded-For": "203.0.113.7, 203.0.113.8"}
        assert await bad_login(env, http, "someone", other_client) == 401


async def test_signups_are_limited_per_address(tmp_path: Path) -> None:
    limits = ApiSettings(host="127.0.0.1", port=0, signups_per_ip=3)
    async with running_api(tmp_path, settings=limits) as env, session() as http:
        url = env.url("/v1.0/auth/signup")
        statuses = [
            (await post(http, url, {"name": f"user{i}", "password": "password1"}))[0]
            for i in range(3)
        ]
        assert statuses == [201, 201, 201]
        status, data, retry_after = await post(http, url, {"name": "user9", "password": "pw123456"})
        assert (status, data["error"]["code"]) == (429, "rate_limited")
        assert int(retry_after or 0) > 60
        async with session("127.0.0.2") as other:
            assert (await post(other, url, {"name": "user9", "password": "pw123456"}))[0] == 201


async def test_a_full_hashing_queue_answers_503_with_retry_after(
    env: ApiEnv, hasher: CountingHasher
) -> None:
    await env.signup("alice", "alice-password")
    hasher.gate.clear()  # the one argon2 thread is stuck: work piles up
    async with session() as http:
        tasks = [
            asyncio.create_task(
                post(http, env.url("/v1.0/auth/login"), {"name": f"u{i}", "password": "pw123456"})
            )
            for i in range(15)
        ]
        # Answered while the hash is stuck: those can only be refusals, given at once.
        async with asyncio.timeout(10):
            while sum(t.done() for t in tasks) < 15 - 9:  # 1 running + 8 waiting at most
                await asyncio.sleep(0.01)
        hasher.gate.set()
        answers = await asyncio.gather(*tasks)
    statuses = Counter(status for status, _, _ in answers)
    assert statuses == {401: 9, 503: 6}, statuses
    assert all(int(ra or 0) >= 1 for status, _, ra in answers if status == 503)
    assert {d["error"]["code"] for s, d, _ in answers if s == 503} == {"busy"}


async def test_login_keys_expire_after_the_default_lifetime(env: ApiEnv) -> None:
    async with session() as http:
        status, signed_up, _ = await post(
            http, env.url("/v1.0/auth/signup"), {"name": "alice", "password": "password1"}
        )
        status, logged_in, _ = await post(
            http, env.url("/v1.0/auth/login"), {"name": "alice", "password": "password1"}
        )
    assert status == 200
    lifetime = timedelta(seconds=LIMITS.login_key_lifetime_s)
    assert lifetime == timedelta(days=7)
    for data in (signed_up, logged_in):
        expires = datetime.fromisoformat(data["accesskey"]["expires_at"])
        assert lifetime - timedelta(minutes=1) < expires - datetime.now(UTC) <= lifetime
    async with Client(env.base_url, logged_in["accesskey"]["token"]) as client:
        explicit = await client.accesskeys.create("ci", expires_in_s=30 * 24 * 3600)
        forever = await client.accesskeys.create("deploy")
    assert explicit.expires_at is not None
    assert explicit.expires_at - datetime.now(UTC) > timedelta(days=29)
    assert forever.expires_at is None


async def test_live_keys_are_capped_and_login_retires_the_oldest_session_key(
    tmp_path: Path,
) -> None:
    limits = ApiSettings(host="127.0.0.1", port=0, max_live_keys=3)
    async with running_api(tmp_path, settings=limits) as env:
        first = await env.signup("alice", "password1")
        async with Client(env.base_url, first) as client:
            ci = await client.accesskeys.create("ci")
            await client.accesskeys.create("deploy")
            with pytest.raises(ApiError) as err:
                await client.accesskeys.create("one-too-many")
            assert (err.value.status, err.value.code) == (409, "key_limit_reached")
            assert "revoke" in err.value.message
            assert "ARI_OFFLOAD_API_MAX_LIVE_KEYS" in err.value.message
            # A login at the cap still works: it retires the oldest login/signup key.
            async with await Client.login(env.base_url, "alice", "password1") as fresh:
                keys = await fresh.accesskeys.list()
                assert len([k for k in keys if k.revoked_at is None]) == 3
                with pytest.raises(ApiError) as gone:
                    await client.accesskeys.list()  # the signup key was the oldest
                assert gone.value.status == 401
                await fresh.accesskeys.revoke(ci.id)
                assert (await fresh.accesskeys.create("ci-2")).token


async def test_delete_call_is_tenant_scoped_and_refused_while_live(env: ApiEnv) -> None:
    alice, bob = await env.signup("alice", "password1"), await env.signup("bob", "password1")
    key = await env.store.keys.authenticate(alice)
    assert key is not None
    calls = env.store.calls
    ringing = await calls.create(key.customer_id, direction=Direction.OUT, flow_id=None)
    active = await calls.create(key.customer_id, direction=Direction.IN, flow_id=None)
    await calls.set_status(active.id, CallStatus.ACTIVE)
    # Started over a minute ago: newer calls stay until the calls-per-minute window passes.
    ended = await calls.create(
        key.customer_id, direction=Direction.IN, flow_id=None,
        started_at=utcnow() - timedelta(minutes=5),
    )  # fmt: skip
    await calls.set_status(ended.id, CallStatus.ACTIVE)
    await calls.add_transcript(ended.id, Role.CALLER, "my card number is 4111")
    await calls.add_turn(ended.id, turn=1, total_ms=800.0)
    await calls.set_status(ended.id, CallStatus.ENDED)

    async with Client(env.base_url, bob) as other:
        with pytest.raises(ApiError) as err:
            await other.calls.delete(ended.id)
        assert err.value.status == 404
    async with Client(env.base_url, alice) as client:
        for live in (ringing, active):
            with pytest.raises(ApiError) as err:
                await client.calls.delete(live.id)
            assert (err.value.status, err.value.code) == (409, "call_not_final")
        async with (
            aiohttp.ClientSession() as http,
            http.delete(
                env.url(f"/v1.0/calls/{ended.id}"), headers={"Authorization": f"Bearer {alice}"}
            ) as r,
        ):
            assert r.status == 204
            assert await r.read() == b""
        with pytest.raises(ApiError) as err:
            await client.calls.get(ended.id)
        assert err.value.status == 404
        with pytest.raises(ApiError) as err:
            await client.calls.delete(ended.id)
        assert err.value.status == 404
        assert {c.id for c in await client.calls.list()} == {ringing.id, active.id}
    async with env.store.engine.connect() as conn:
        for sql in (
            "SELECT count(*) FROM transcript_entries WHERE call_id = :id",
            "SELECT count(*) FROM turns WHERE call_id = :id",
        ):
            assert (await conn.execute(text(sql), {"id": ended.id})).scalar_one() == 0, sql
