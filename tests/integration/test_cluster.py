"""Scale-out: Kamailio in front of two Asterisk nodes, each with its own ari-offload, one
PostgreSQL behind (scripts/cluster, docs/cluster.md). Real SIPp callers through the real
proxy, real API requests to either node, a node killed and started again.

One cluster serves the module (it is brought up once: about 10-30 s); the failover test runs
last, as it kills a node. The numbers the closing note needs (the calls' spread, the failover
times) are written to the terminal.
"""

from __future__ import annotations

import asyncio
import io
import socket
import time
import wave
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import aiohttp
import numpy as np
import pytest

from ari_offload.media.g711 import ULAW
from ari_offload.sdk.client import Client
from ari_offload.speech.models import SpeechModels
from ari_offload.store import CallStatus, Store
from testbed.audio import silence_file
from testbed.capture import RtpCapture
from testbed.cluster import NODES, PROXY, Cluster, ClusterError
from testbed.dialogue import bursts
from testbed.sipp import SippAnswerer, SippCall
from tests.integration.helpers import heard, sounds_like
from tests.postgres_fixture import free_port

pytestmark = pytest.mark.integration

SHIPPED = "Your order has been shipped today."
HOLD = [{"type": "pause", "seconds": 60}]  # the caller holds; the tests hang up through the API
HOLD_S = 58.0  # the callers' own limit, before the flow's end hangs up
ANSWER_TIMEOUT_S = 15.0  # from dialling to the call active in the store
NODE_TIMEOUT_S = 5.0  # ARI_OFFLOAD_CLUSTER_NODE_TIMEOUT_S's default, which scripts/cluster keeps


def say(request: pytest.FixtureRequest, text: str) -> None:
    """To the terminal, pass or fail (output capture set aside), and the captured output."""
    print(f"[cluster] {text}")
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\n[cluster] {text}")


def _taken(address: str, port: int, kind: socket.SocketKind) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind((address, port))
        except OSError:
            return True
    return False


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """The module's cluster, on its own PostgreSQL port and state dir; down at the end,
    and no node may have logged an ERROR meanwhile."""
    ports = [(PROXY.split(":")[0], 5060, socket.SOCK_DGRAM)]
    for address in NODES.values():
        ports += [(address, 5060, socket.SOCK_DGRAM), (address, 8080, socket.SOCK_STREAM)]
    busy = [f"{a}:{p}" for a, p, kind in ports if _taken(a, p, kind)]
    if busy:
        pytest.fail(f"{', '.join(busy)} in use: is a cluster running here? (scripts/cluster down)")
    bed = Cluster(pg_port=free_port())
    try:
        took = bed.up()
    except (ClusterError, TimeoutError) as exc:
        bed.down()
        bed.remove()
        pytest.fail(str(exc), pytrace=False)
    say(request, f"up in {took:.1f} s (scripts/cluster up: PostgreSQL, Kamailio, 2 nodes)")
    yield bed
    errors = bed.error_lines()
    bed.down()
    bed.remove()
    assert errors == [], "the nodes logged errors:\n" + "\n".join(errors)


@dataclass
class Placed:
    caller: SippCall
    call_id: str
    node: str
    answered_s: float  # from dialling to active in the store


class Callers:
    """Callers through the proxy, each call found in the store the moment it is active."""

    def __init__(self, store: Store, client: Client, flow_id: str) -> None:
        self.store = store
        self.client = client
        self.flow_id = flow_id
        self.placed: list[Placed] = []
        self.others: list[SippCall] = []  # calls not (yet) found active
        self._known: set[str] = set()

    async def place(self) -> Placed:
        """Dial through Kamailio; wait until the call is active and say on which node."""
        caller = SippCall(f"8{self.flow_id}", silence_file(HOLD_S), hangup_after_s=HOLD_S,
                          proxy=PROXY)  # fmt: skip
        started = time.monotonic()
        await caller.start()
        self.others.append(caller)
        async with asyncio.timeout(ANSWER_TIMEOUT_S):
            while True:
                fresh = [c for c in await self.client.calls.list(status="active")
                         if c.id not in self._known]  # fmt: skip
                if fresh:
                    break
                await asyncio.sleep(0.1)
        assert len(fresh) == 1, "calls placed one at a time"
        record = await self.store.calls.get(fresh[0].id, customer_id=None)
        assert record is not None
        assert record.node_id in NODES
        self._known.add(record.id)
        self.others.remove(caller)
        placed = Placed(caller, record.id, record.node_id, time.monotonic() - started)
        self.placed.append(placed)
        return placed

    async def hang_up_all(self, via_nodes: str = "ab") -> None:
        """Through the API, alternating the nodes asked; every caller then ends well."""
        live = {c.id for c in await self.client.calls.list(status="active", limit=100)}
        for n, placed in enumerate(p for p in self.placed if p.call_id in live):
            async with Client(Cluster.api(via_nodes[n % len(via_nodes)]),
                              self.client.accesskey) as via:  # fmt: skip
                await via.calls.hangup(placed.call_id)
        for placed in self.placed:
            if placed.call_id in live:
                result = await placed.caller.wait(timeout=15)
                assert result.ok, result.output[-2000:] + result.errors

    async def kill(self) -> None:
        for caller in [p.caller for p in self.placed] + self.others:
            await caller.kill()


async def tenant(bed: Cluster, name: str, concurrent_calls: int, node: str) -> Client:
    """A tenant the operator opened, with its own quota of calls at once; its client talks
    to ``node``."""
    async with bed.store() as store:
        admin = (await store.admin_keys.create("cluster-test")).token
    password = f"{name}-password"
    headers = {"Authorization": f"Bearer {admin}"}
    base = Cluster.api("a") + "/v1.0/admin/tenants"
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(base, json={"name": name, "password": password}) as r:
            assert r.status == 201, await r.text()
            tenant_id = (await r.json())["id"]
        rules = {"concurrent_calls": concurrent_calls}
        async with http.put(f"{base}/{tenant_id}/rules", json=rules) as r:
            assert r.status == 200, await r.text()
    return await Client.login(Cluster.api(node), name, password)


@pytest.fixture
async def new_callers(
    cluster: Cluster, request: pytest.FixtureRequest
) -> AsyncIterator[Callable[..., Awaitable[Callers]]]:
    """``await new_callers(quota, node)``: a tenant allowed ``quota`` calls at once, its
    holding flow and its callers (killed at the end if still there), through ``node``'s API."""
    made: list[Callers] = []
    async with AsyncExitStack() as stack:
        store = await stack.enter_async_context(cluster.store())

        async def new(quota: int, node: str = "b", actions: list[Any] = HOLD) -> Callers:
            client = await tenant(cluster, request.node.name[5:45], quota, node)
            stack.push_async_callback(client.close)
            flow = await client.flows.create("hold", actions)
            made.append(Callers(store, client, flow.id))
            return made[-1]

        try:
            yield new
        finally:
            for group in made:
                await group.kill()


@pytest.mark.models
async def test_calls_through_the_proxy_land_on_both_nodes_and_any_node_commands_them(
    new_callers: Callable[..., Awaitable[Callers]],
    speech_models: SpeechModels,
    request: pytest.FixtureRequest,
) -> None:
    callers = await new_callers(12, actions=[{"type": "record"}, *HOLD])
    proxied_media = RtpThroughProxy()
    await proxied_media.start()
    for _ in range(10):
        await callers.place()
    spread = Counter(p.node for p in callers.placed)
    say(request, "10 calls through Kamailio: " + ", ".join(
        f"node {n} took {spread[n]}" for n in NODES))  # fmt: skip
    assert set(spread) == set(NODES), "every node takes some of the calls"

    ids = {p.call_id for p in callers.placed}
    for node in NODES:  # either node lists every node's calls
        async with Client(Cluster.api(node), callers.client.accesskey) as via:
            assert {c.id for c in await via.calls.list(status="active", limit=100)} == ids

    # A hangup sent to the node that does not run the call.
    on_a = next(p for p in callers.placed if p.node == "a")
    async with Client(Cluster.api("b"), callers.client.accesskey) as via_b:
        await via_b.calls.hangup(on_a.call_id)
    result = await on_a.caller.wait(timeout=10)
    assert result.ok, result.output[-2000:] + result.errors
    ended = await callers.client.calls.get(on_a.call_id)
    assert (ended.status, ended.hangup_reason) == ("ended", "api")

    # A talk sent to the node that does not run the call: the caller hears it, from its node.
    on_b = next(p for p in callers.placed if p.node == "b")
    capture = RtpCapture(on_b.caller.media_port)
    await capture.start()
    async with Client(Cluster.api("a"), callers.client.accesskey) as via_a:
        await via_a.calls.talk(on_b.call_id, SHIPPED)
    await asyncio.sleep(4.0)
    await capture.stop()
    spoken = bursts(capture.received(), ULAW.decode, gap_s=1.0)
    words = [await heard(speech_models, burst) for burst in spoken]
    assert any(sounds_like(w, SHIPPED) for w in words), words
    assert {p.src_ip for p in capture.received()} == {NODES["b"]}, "RTP straight from node b"

    await callers.hang_up_all()
    assert await proxied_media.stop() == 0, "RTP went through the proxy"

    # Its recording, asked of node a: the file is on node b, which sends it on; the talk is
    # on the agent's side (the right channel).
    async with Client(Cluster.api("a"), callers.client.accesskey) as via_a:
        recording = await via_a.calls.recording(on_b.call_id)
    with wave.open(io.BytesIO(recording)) as wav:
        assert wav.getnchannels() == 2
        rate, frames = wav.getframerate(), wav.readframes(wav.getnframes())
    agent_side = np.frombuffer(frames, dtype="<i2").reshape(-1, 2)[:, 1].copy()
    said = await asyncio.to_thread(speech_models.transcriber.transcribe, agent_side, None, rate)
    assert sounds_like(said, SHIPPED), said


async def test_a_tenant_quota_holds_across_both_nodes(
    new_callers: Callable[..., Awaitable[Callers]], request: pytest.FixtureRequest
) -> None:
    callers = await new_callers(3)
    for _ in range(3):
        await callers.place()
    assert {p.node for p in callers.placed} == set(NODES), "the 3 calls are on both nodes"

    fourth = SippCall(f"8{callers.flow_id}", silence_file(HOLD_S), hangup_after_s=HOLD_S,
                      proxy=PROXY)  # fmt: skip
    callers.others.append(fourth)
    result = await fourth.run()  # an apology, then the app hangs up
    assert result.ok, result.output[-2000:] + result.errors
    calls = await callers.client.calls.list(limit=10)
    refused = [c for c in calls if c.id not in {p.call_id for p in callers.placed}]
    assert [(c.status, c.hangup_reason) for c in refused] == [
        ("ended", "quota: tenant.concurrent_calls")
    ]
    record = await callers.store.calls.get(refused[0].id, customer_id=None)
    assert record is not None
    say(request, f"quota 3: calls on nodes {sorted(p.node for p in callers.placed)}, the 4th "
                 f"refused by node {record.node_id}")  # fmt: skip
    active = {c.id for c in await callers.client.calls.list(status="active")}
    assert active == {p.call_id for p in callers.placed}
    await callers.hang_up_all()


async def test_a_node_without_its_app_refuses_calls_and_the_proxy_tries_the_other(
    cluster: Cluster,
    new_callers: Callable[..., Awaitable[Callers]],
    request: pytest.FixtureRequest,
) -> None:
    """Node b's ari-offload dies, its Asterisk goes on answering OPTIONS: it refuses new calls
    with 503 (the dialplan, when Stasis() fails) and Kamailio sends them to node a."""
    callers = await new_callers(4, "a")
    await cluster.kill_app("b")
    try:
        placed = [await callers.place() for _ in range(2)]  # round robin tries b for one
        assert [p.node for p in placed] == ["a", "a"]
        # b was tried, refused with 503, and the call went on to a.
        assert f"node sip:{NODES['b']}:5060 failed (503)" in cluster.kamailio_log()
        say(request, f"node b without its app: 2 calls answered by a in "
                     f"{', '.join(f'{p.answered_s:.1f} s' for p in placed)}")  # fmt: skip
        await callers.hang_up_all(via_nodes="a")
    finally:
        await cluster.start("b")


async def test_a_dead_node_is_routed_around_its_calls_closed_and_it_rejoins(
    cluster: Cluster,
    new_callers: Callable[..., Awaitable[Callers]],
    request: pytest.FixtureRequest,
) -> None:
    callers = await new_callers(20)
    before = [await callers.place() for _ in range(4)]
    on_a = [p for p in before if p.node == "a"]
    assert on_a, "round robin put calls on node a"

    killed = time.monotonic()
    await cluster.kill("a")
    out_of_rotation = asyncio.create_task(_until_flags(cluster, "a", "AP"))
    after = [await callers.place() for _ in range(5)]
    assert [p.node for p in after] == ["b"] * 5
    first_answered = after[0].answered_s
    all_placed = time.monotonic() - killed
    async with asyncio.timeout(10):
        inactive_s = await out_of_rotation - killed

    # The survivor closes node a's calls once a's heartbeat is NODE_TIMEOUT_S old.
    async with asyncio.timeout(NODE_TIMEOUT_S + 10):
        while not all(status.is_final for status in [
                await _status(callers.store, p.call_id) for p in on_a]):  # fmt: skip
            await asyncio.sleep(0.2)
    closed_s = time.monotonic() - killed
    for p in on_a:
        record = await callers.store.calls.get(p.call_id, customer_id=None)
        assert record is not None
        assert record.hangup_reason is not None
        assert record.hangup_reason.startswith("node-lost: node a sent no heartbeat")
        await p.caller.kill()  # its Asterisk is gone: no BYE will ever come

    restarted = time.monotonic()
    await cluster.start("a")  # returns once Kamailio sees it answer again
    rejoined_s = time.monotonic() - restarted
    back = [await callers.place() for _ in range(2)]  # round robin: one of two is a's
    assert "a" in {p.node for p in back}

    # Outbound: node b runs more calls than a; asked on b, the call is placed by a.
    answerer = SippAnswerer()
    await answerer.start()
    try:
        async with Client(Cluster.api("b"), callers.client.accesskey) as via_b:
            outbound = await via_b.calls.create("sipp-uas", callers.flow_id)
            record = await callers.store.calls.get(outbound.id, customer_id=None)
            assert record is not None
            assert record.node_id == "a"
            try:
                async with asyncio.timeout(ANSWER_TIMEOUT_S):
                    while (await _status(callers.store, outbound.id)) != CallStatus.ACTIVE:
                        await asyncio.sleep(0.1)
            except TimeoutError:
                far_end = await answerer.wait(timeout=1)
                logged = [ln for ln in cluster.log_text("a").splitlines() if outbound.id in ln]
                raise AssertionError(
                    f"the outbound call was not answered; node a: {logged}; the far end: "
                    f"{far_end.output[-1500:]} {far_end.errors[-1500:]}"
                ) from None
            await via_b.calls.hangup(outbound.id)
        assert (await answerer.wait(timeout=15)).ok
    finally:
        await answerer.kill()

    say(request, f"failover: node a killed; Kamailio took it out of rotation after "
                 f"{inactive_s:.1f} s; the first call after the kill was answered (by b) in "
                 f"{first_answered:.1f} s, all 5 in {all_placed:.1f} s; a's "
                 f"{len(on_a)} call(s) closed by b after {closed_s:.1f} s (node-lost); "
                 f"scripts/cluster start a had it back in rotation and live in {rejoined_s:.1f} s "
                 f"(models loaded)")  # fmt: skip
    spread = Counter(p.node for p in callers.placed)
    say(request, f"calls of this test by node: {dict(sorted(spread.items()))}")
    await callers.hang_up_all()


async def _status(store: Store, call_id: str) -> CallStatus:
    record = await store.calls.get(call_id, customer_id=None)
    assert record is not None
    return record.status


async def _until_flags(cluster: Cluster, node: str, flags: str) -> float:
    """The moment Kamailio's flags for ``node`` are no longer ``flags``."""
    while await cluster.dispatcher_flags(node) == flags:
        await asyncio.sleep(0.1)
    return time.monotonic()


class RtpThroughProxy:
    """Counts UDP packets to or from the proxy other than SIP: media it should never see."""

    def __init__(self) -> None:
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        address = PROXY.split(":")[0]
        self._proc = await asyncio.create_subprocess_exec(
            "tshark", "-i", "lo", "-f", f"udp and host {address} and not port 5060", "-l",
            "-n", "-T", "fields", "-e", "frame.number",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert self._proc.stderr is not None
        async with asyncio.timeout(15):
            while b"Capturing on" not in await self._proc.stderr.readline():
                assert self._proc.returncode is None, "tshark exited before capturing"

    async def stop(self) -> int:
        assert self._proc is not None
        await asyncio.sleep(0.3)
        self._proc.terminate()
        out, _ = await self._proc.communicate()
        return len(out.split())
