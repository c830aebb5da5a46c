"""Two API nodes on one PostgreSQL store: a live-call command reaches the call's node, an
outbound call the least-loaded node, and nobody but a node can pass for one.

Real API servers, a real PostgreSQL (tests/postgres_fixture.py), real node-to-node HTTP; the
telephony behind each node is the API tests' fake (tests/api_support.py), so what ran where
is read off it. tests/integration/test_cluster.py drives the same through real Asterisks.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web

from ari_offload.api import RedactingAccessLogger, make_api_app
from ari_offload.api.forward import NODE_HEADER, Forwarder
from ari_offload.config import ApiSettings, StoreSettings
from ari_offload.observe.metrics import Metrics
from ari_offload.observe.recording import FORMAT, WavWriter
from ari_offload.policy_file import load_policy
from ari_offload.store import CallStatus, Direction, Store
from ari_offload.store._db import utcnow
from testbed.asterisk import TESTBED_POLICY_FILE
from tests.api_support import FAST_HASHER, TEST_SPEECH, ApiEnv, FakeTelephony, running_api
from tests.postgres_fixture import free_port

SECRET = "cluster-secret-of-the-api-tests"
TIMEOUT_S = 5.0


@dataclass
class ApiNode:
    id: str
    env: ApiEnv
    forwarder: Forwarder

    @property
    def telephony(self) -> FakeTelephony:
        return self.env.telephony

    async def beat(self, *, silent_s: float = 0.0, load: int = 0) -> None:
        at = utcnow() - timedelta(seconds=silent_s)
        await self.env.store.nodes.heartbeat(
            self.id, api_url=self.env.base_url, asterisk=f"asterisk-{self.id}", load=load,
            ari_connected=True, at=at, started_at=at,
        )  # fmt: skip


@pytest.fixture
async def nodes(tmp_path: Path, postgres_url: str) -> AsyncIterator[dict[str, ApiNode]]:
    """Nodes a and b: each its own store engine (as two processes would), one database."""
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(aiohttp.ClientSession())
        found = {}
        for node_id in ("a", "b"):
            store = await Store.open(
                StoreSettings(data_dir=tmp_path / node_id, url=postgres_url),
                password_hasher=FAST_HASHER,
            )
            stack.push_async_callback(store.close)
            metrics, telephony = Metrics(), FakeTelephony()
            forwarder = Forwarder(node_id, SECRET, http, timeout_s=5, node_timeout_s=TIMEOUT_S,
                                  recordings=recordings_of(tmp_path, node_id),
                                  metrics=metrics)  # fmt: skip
            app = make_api_app(
                ApiSettings(host="127.0.0.1", port=0), store, telephony, metrics,
                load_policy(TESTBED_POLICY_FILE), speech=TEST_SPEECH, forwarder=forwarder,
            )  # fmt: skip
            runner = web.AppRunner(app, access_log_class=RedactingAccessLogger)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            host, port = runner.addresses[0][:2]
            env = ApiEnv(f"http://{host}:{port}", store, telephony, metrics, app)
            found[node_id] = ApiNode(node_id, env, forwarder)
        for node in found.values():
            await node.beat()
        yield found


def recordings_of(tmp_path: Path, node_id: str) -> Path:
    return tmp_path / node_id / "recordings"


async def recorded_on(
    node: ApiNode, token: str, tmp_path: Path, seconds: float
) -> tuple[str, bytes]:
    """A call of the tenant that ``node`` recorded (a stereo WAV in its directory, of
    ``seconds`` of noise): its id, and the file's bytes."""
    call_id = await call_on(node, token, CallStatus.ENDED)
    path = recordings_of(tmp_path, node.id) / f"{call_id}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = WavWriter.open(path, FORMAT)
    audio = np.random.default_rng(7).integers(-9000, 9000, int(seconds * 8000) * 2, np.int16)
    writer.finish(audio.tobytes())
    assert await node.env.store.calls.set_recording(call_id, str(path), utcnow()) == str(path)
    return call_id, path.read_bytes()


async def download(url: str, token: str) -> tuple[int, bytes, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(url, headers={"Authorization": f"Bearer {token}"}) as r,
    ):
        return r.status, await r.read(), r.headers


async def call_on(node: ApiNode, token: str, status: CallStatus = CallStatus.ACTIVE) -> str:
    """An inbound call of the tenant with ``token``, recorded as running on ``node``."""
    store = node.env.store
    key = await store.keys.authenticate(token)
    assert key is not None
    call = await store.calls.create(
        key.customer_id, direction=Direction.IN, flow_id=None, node_id=node.id
    )
    await store.calls.set_status(call.id, status)
    return call.id


def forwards(node: ApiNode, outcome: str) -> float:
    """Requests ``node`` sent on to another node, as its /metrics counts them."""
    value = node.env.metrics.registry.get_sample_value(
        "ari_offload_cluster_forwards_total", {"outcome": outcome}
    )
    return value or 0.0


async def talk_flow(node: ApiNode, token: str) -> str:
    flow = {"name": "hello", "actions": [{"type": "talk", "text": "Hello."}]}
    status, body, _ = await post(node.env.url("/v1.0/flows"), token, flow)
    assert status == 201
    flow_id: str = body["id"]
    return flow_id


async def post(url: str, token: str, body: Any = None, **headers: str) -> tuple[int, Any, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, json=body, headers={"Authorization": f"Bearer {token}", **headers}) as r,
    ):
        return r.status, await r.json(content_type=None), r.headers


async def test_live_call_commands_run_on_the_node_of_the_call(nodes: dict[str, ApiNode]) -> None:
    a, b = nodes["a"], nodes["b"]
    token = await a.env.signup("tenant", "tenant-password")
    call_id = await call_on(a, token)

    status, body, _ = await post(b.env.url(f"/v1.0/calls/{call_id}/talk"), token, {"text": "Hi."})
    assert (status, body["id"]) == (202, call_id)
    assert a.telephony.talks == [(call_id, "Hi.")]
    assert b.telephony.talks == []

    a.telephony.full.add(call_id)  # the call's node answers 429: it reaches the client as is
    status, body, headers = await post(
        b.env.url(f"/v1.0/calls/{call_id}/talk"), token, {"text": "Again."}
    )
    assert (status, body["error"]["code"], headers["Retry-After"]) == (429, "talk_queue_full", "3")

    status, _, _ = await post(b.env.url(f"/v1.0/calls/{call_id}/hangup"), token)
    assert status == 202
    assert (a.telephony.hangups, b.telephony.hangups) == ([call_id], [])

    a.telephony.gone.add(call_id)  # its node no longer holds it
    status, body, _ = await post(b.env.url(f"/v1.0/calls/{call_id}/hangup"), token)
    assert (status, body["error"]["code"]) == (409, "call_not_active")

    # Asked on its own node, nothing is forwarded.
    await post(a.env.url(f"/v1.0/calls/{call_id}/hangup"), token)
    assert a.telephony.hangups == [call_id] * 3
    assert (forwards(b, "answered"), forwards(a, "answered")) == (4, 0)


async def test_another_tenants_call_is_404_on_every_node(nodes: dict[str, ApiNode]) -> None:
    a, b = nodes["a"], nodes["b"]
    owner = await a.env.signup("owner", "owner-password")
    other = await b.env.signup("other", "other-password")
    call_id = await call_on(a, owner)

    for node in (a, b):
        for command, body in (("talk", {"text": "Transfer me."}), ("hangup", None)):
            status, reply, _ = await post(node.env.url(f"/v1.0/calls/{call_id}/{command}"), other,
                                          body)  # fmt: skip
            assert (status, reply["error"]["code"]) == (404, "not_found")
    assert (a.telephony.talks, a.telephony.hangups, b.telephony.hangups) == ([], [], [])


async def test_a_tenant_cannot_pass_for_a_node(nodes: dict[str, ApiNode], tmp_path: Path) -> None:
    """The node header is checked before anything else, on every route: a forged one is a
    401; on a server outside any cluster too."""
    a, b = nodes["a"], nodes["b"]
    token = await a.env.signup("forger", "forger-password")
    call_id = await call_on(a, token)
    path = f"/v1.0/calls/{call_id}/talk"
    body = b'{"text": "Hi."}'
    outsider = Forwarder("b", "a-secret-of-another-cluster", None,  # type: ignore[arg-type]
                         timeout_s=1, node_timeout_s=TIMEOUT_S)  # fmt: skip
    honest = b.forwarder.sign("POST", path, body)
    for forged in (
        "node=b, t=0, sig=" + "0" * 64,
        outsider.sign("POST", path, body),
        b.forwarder.sign("POST", path, b'{"text": "Something else."}'),
        honest.replace("node=b", "node=a"),
        "trust me",
    ):
        status, reply, _ = await post(
            a.env.url(path), token, {"text": "Hi."}, **{NODE_HEADER: forged}
        )
        assert (status, reply["error"]["code"]) == (401, "invalid_node_signature"), forged
    assert a.telephony.talks == []
    async with running_api(tmp_path) as single:  # not in a cluster: no node may call it
        status, _, _ = await post(single.url("/v1.0/agents"), token, {}, **{NODE_HEADER: honest})
        assert status == 401


async def test_a_call_on_a_node_that_is_down_is_503(nodes: dict[str, ApiNode]) -> None:
    a, b = nodes["a"], nodes["b"]
    token = await b.env.signup("waiting", "waiting-password")
    call_id = await call_on(a, token)
    await a.beat(silent_s=TIMEOUT_S + 1)

    status, reply, headers = await post(b.env.url(f"/v1.0/calls/{call_id}/hangup"), token)
    assert (status, reply["error"]["code"], headers["Retry-After"]) == (
        503,
        "node_unavailable",
        "6",
    )
    assert a.telephony.hangups == []


async def test_outbound_calls_are_placed_by_the_least_loaded_live_node(
    nodes: dict[str, ApiNode],
) -> None:
    a, b = nodes["a"], nodes["b"]
    token = await a.env.signup("dialler", "dialler-password")
    flow_id = await talk_flow(a, token)
    dial = {"destination": "1001", "flow_id": flow_id}
    for _ in range(2):
        await call_on(a, token)

    status, placed, _ = await post(a.env.url("/v1.0/calls"), token, dial)  # b has fewer calls
    assert status == 201
    assert [o["call_id"] for o in b.telephony.originated] == [placed["id"]]
    assert a.telephony.originated == []
    record = await a.env.store.calls.get(placed["id"], customer_id=None)
    assert record is not None
    assert record.node_id == "b"

    for _ in range(2):  # b: 3 calls now, a: 2
        await call_on(b, token)
    status, placed, _ = await post(b.env.url("/v1.0/calls"), token, dial)
    assert [o["call_id"] for o in a.telephony.originated] == [placed["id"]]

    await b.beat(silent_s=TIMEOUT_S + 1)  # b is gone: a places it, however loaded
    await call_on(a, token)  # a: 4 calls (one ringing), b: 3
    status, _, _ = await post(a.env.url("/v1.0/calls"), token, dial)
    assert status == 201
    assert (len(a.telephony.originated), len(b.telephony.originated)) == (2, 1)


async def test_an_unreachable_node_leaves_the_outbound_call_to_the_asked_node(
    nodes: dict[str, ApiNode],
) -> None:
    """The registry says b is live and idle, but nothing answers at its address (it died
    within the timeout): nothing was sent, so a places the call itself."""
    a = nodes["a"]
    await a.env.store.nodes.heartbeat(
        "b", api_url=f"http://127.0.0.1:{free_port()}", asterisk="asterisk-b", load=0,
        ari_connected=True, at=utcnow(), started_at=utcnow(),
    )  # fmt: skip
    token = await a.env.signup("persistent", "persistent-password")
    await call_on(a, token)
    flow_id = await talk_flow(a, token)

    status, placed, _ = await post(a.env.url("/v1.0/calls"), token,
                                   {"destination": "1001", "flow_id": flow_id})  # fmt: skip
    assert status == 201
    assert [o["call_id"] for o in a.telephony.originated] == [placed["id"]]
    assert forwards(a, "unreachable") == 1


async def test_the_cluster_secret_never_reaches_the_logs(
    nodes: dict[str, ApiNode], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    a, b = nodes["a"], nodes["b"]
    token = await a.env.signup("logged", "logged-password")
    call_id = await call_on(a, token)
    status, _, _ = await post(b.env.url(f"/v1.0/calls/{call_id}/talk"), token, {"text": "Hi."})

    assert status == 202
    assert any("ran on node a" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if SECRET in r.getMessage()]


async def test_any_node_serves_a_recording_the_node_that_recorded_it_sends_on(
    nodes: dict[str, ApiNode], tmp_path: Path
) -> None:
    """A recording is a file on the node that recorded the call; asked of another node, it
    comes whole, relayed as it streams (a minute of stereo audio: several relayed chunks)."""
    a, b = nodes["a"], nodes["b"]
    owner = await a.env.signup("recorded", "recorded-password")
    other = await b.env.signup("nosy", "nosy-password")
    call_id, wav = await recorded_on(a, owner, tmp_path, seconds=60)
    url = f"/v1.0/calls/{call_id}/recording"

    status, body, headers = await download(b.env.url(url), owner)
    assert status == 200
    assert body == wav
    assert (headers["Content-Type"], int(headers["Content-Length"])) == ("audio/wav", len(wav))
    assert headers["Content-Disposition"] == f'attachment; filename="{call_id}.wav"'
    assert forwards(b, "answered") == 1
    assert (await download(a.env.url(url), owner))[1] == wav  # its own node: read there
    assert forwards(a, "answered") == 0

    for node in (a, b):  # tenant scoping holds on both nodes
        status, body, _ = await download(node.env.url(url), other)
        assert status == 404, body
    assert forwards(b, "answered") == 1

    await a.beat(silent_s=TIMEOUT_S + 1)  # a is down: its recordings cannot be had meanwhile
    status, body, headers = await download(b.env.url(url), owner)
    assert (status, headers["Retry-After"]) == (503, "6")
    assert b"node_unavailable" in body
    assert b"node a" in body


async def test_a_recording_in_a_directory_the_nodes_share_is_read_where_asked(
    nodes: dict[str, ApiNode], tmp_path: Path
) -> None:
    a, b = nodes["a"], nodes["b"]
    token = await a.env.signup("shared", "shared-password")
    shared = recordings_of(tmp_path, "b")  # b's directory is where a wrote: as if shared
    call_id = await call_on(a, token, CallStatus.ENDED)
    shared.mkdir(parents=True, exist_ok=True)
    writer = WavWriter.open(shared / f"{call_id}.wav", FORMAT)
    writer.finish(b"\x01\x00" * 1600)
    await a.env.store.calls.set_recording(call_id, str(shared / f"{call_id}.wav"), utcnow())
    await a.beat(silent_s=TIMEOUT_S + 1)  # a is down, and not needed

    status, body, _ = await download(b.env.url(f"/v1.0/calls/{call_id}/recording"), token)
    assert status == 200
    assert body == (shared / f"{call_id}.wav").read_bytes()
    assert forwards(b, "answered") == 0
