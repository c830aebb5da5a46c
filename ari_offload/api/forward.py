"""Cluster: an API request that must run on one particular node is sent there, signed.

Any node answers the API from the shared store, but three kinds of operation run on one node:
a command on a live call (every ``POST /calls/{call_id}/<command>``: hangup, talk, and any
added later) runs on the call's node, where its media is; an outbound call (``POST /calls``)
is placed by the least-loaded live node; a call's recording (``GET /calls/{call_id}/recording``)
is read on the node that wrote it, unless its file is in this node's recordings directory
too (a directory the nodes share), and is relayed as it streams, never held whole in memory.
The node that receives the request authenticates the tenant, validates the body and checks
the call is the tenant's; it then sends the same request (path, query, the tenant's
credentials, body) to that node with a signature header.
That node checks the signature, authenticates and validates again (tenant scoping holds on
both), runs the request itself, never forwards it again, and its answer goes back as it is.

Node-to-node HTTP, found through the registry, rather than LISTEN/NOTIFY: a command needs its
answer (202, 409 not active, 429 with Retry-After), which a one-way NOTIFY does not carry.

The signature is HMAC-SHA256, keyed by the cluster secret (never sent, never logged), over
the sending node, the time, the method, the raw path with its query and the body's hash; it
is good for ``MAX_SKEW_S``. A request with a bad signature is refused with 401, so a tenant
cannot pass for a node (and gains nothing if it did: the node still checks its key).
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
from aiohttp import web
from yarl import URL

from ari_offload.api.errors import ApiError
from ari_offload.cluster import is_live, least_loaded
from ari_offload.observe.metrics import Metrics
from ari_offload.store import Node, Store
from ari_offload.store._db import utcnow

log = logging.getLogger("ari_offload.cluster")

NODE_HEADER = "X-Ari-Offload-Node"
MAX_SKEW_S = 30  # a signed request older (or newer) than this is refused
_HEADER = re.compile(r"^node=(?P<node>[^,\s]{1,64}), t=(?P<t>\d{1,12}), sig=(?P<sig>[0-9a-f]{64})$")
_COPIED = ("Authorization", "Content-Type")  # the tenant's credentials and the body's type
_RELAYED = ("Content-Type", "Retry-After")
_RELAYED_DOWNLOAD = ("Content-Type", "Content-Length", "Content-Disposition")
RELAY_CHUNK = 256 * 1024  # bytes per write of a relayed download


class Placement(enum.Enum):
    ANY = "any"  # this node answers (from the shared store)
    CALL_NODE = "call-node"  # the node running the call in the path
    LEAST_LOADED = "least-loaded"  # the live node with the fewest calls
    RECORDER = "recorder"  # the node that wrote the call's recording, if not on this node


_CALL_COMMAND = re.compile(r"^/v1\.0/calls/\{call_id\}/[a-z_]+$")


def placement(method: str, path: str) -> Placement:
    """Where an operation runs in a cluster: by its route, so a new live-call command
    (``POST /calls/{call_id}/<command>``) reaches the call's node without a line more."""
    if method == "POST" and _CALL_COMMAND.match(path):
        return Placement.CALL_NODE
    if method == "POST" and path == "/v1.0/calls":
        return Placement.LEAST_LOADED
    if method == "GET" and path == "/v1.0/calls/{call_id}/recording":
        return Placement.RECORDER
    return Placement.ANY


def signature(secret: str, node: str, at: int, method: str, raw_path: str, body: bytes) -> str:
    digest = hashlib.sha256(body).hexdigest()
    message = f"{node}\n{at}\n{method}\n{raw_path}\n{digest}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class Forwarder:
    """Sends requests on to the node that must run them; checks those sent to this node."""

    def __init__(
        self,
        node_id: str,
        secret: str,
        session: aiohttp.ClientSession,
        *,
        timeout_s: float,
        node_timeout_s: float,
        recordings: Path | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.node_id = node_id  # this node's
        self._recordings = recordings  # this node's recordings directory
        self._secret = secret
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._node_timeout_s = node_timeout_s
        self._metrics = metrics
        self._clock = clock

    def sign(self, method: str, raw_path: str, body: bytes) -> str:
        at = int(self._clock())
        sig = signature(self._secret, self.node_id, at, method, raw_path, body)
        return f"node={self.node_id}, t={at}, sig={sig}"

    def verify(self, value: str, method: str, raw_path: str, body: bytes) -> str:
        """The sending node's id; raises a 401 ``ApiError`` unless the signature holds."""
        match = _HEADER.match(value)
        if match is None or abs(self._clock() - int(match["t"])) > MAX_SKEW_S:
            raise _bad_signature()
        expected = signature(self._secret, match["node"], int(match["t"]), method, raw_path, body)
        if not hmac.compare_digest(expected, match["sig"]):
            raise _bad_signature()
        return match["node"]

    async def forward(
        self, where: Placement, request: web.Request, store: Store, customer_id: str,
        call_id: str | None,
    ) -> web.StreamResponse | None:  # fmt: skip
        """The answer of the node that must run the request, or None to run it here."""
        if where is Placement.CALL_NODE and call_id is not None:
            node = await self._call_node(store, customer_id, call_id)
            return None if node is None else await self._send(node, request, fall_back=False)
        if where is Placement.RECORDER and call_id is not None:
            node = await self._recorder(store, customer_id, call_id)
            return None if node is None else await self._relay(node, request)
        if where is Placement.LEAST_LOADED:
            nodes = await store.nodes.all()
            loads = await store.calls.count_unfinished_by_node()
            node = least_loaded(nodes, loads, self.node_id, utcnow(), self._node_timeout_s)
            if node is None or node.id == self.node_id:
                return None
            return await self._send(node, request, fall_back=True)
        return None

    async def _call_node(self, store: Store, customer_id: str, call_id: str) -> Node | None:
        call = await store.calls.get(call_id, customer_id=customer_id)
        if call is None or call.node_id in (None, self.node_id) or call.status.is_final:
            return None  # not theirs (404), over (409), or ours: the endpoint answers here
        node = await store.nodes.get(call.node_id)
        if node is None or not is_live(node, utcnow(), self._node_timeout_s):
            wait = int(self._node_timeout_s) + 1
            raise ApiError(
                503,
                "node_unavailable",
                f"the node running this call is down; its calls are closed within {wait} s",
                headers={"Retry-After": str(wait)},
            )
        return node

    async def _recorder(self, store: Store, customer_id: str, call_id: str) -> Node | None:
        call = await store.calls.get(call_id, customer_id=customer_id)
        if call is None or call.recording_path is None or call.node_id in (None, self.node_id):
            return None  # not theirs (404), not recorded (404), or written here
        if await asyncio.to_thread(self._holds, Path(call.recording_path)):
            return None  # the nodes share the recordings' directory: read it here
        node = await store.nodes.get(call.node_id)
        if node is None or not is_live(node, utcnow(), self._node_timeout_s):
            raise ApiError(
                503, "node_unavailable",
                f"the recording is on node {call.node_id}, which is down; try again once it is "
                "back (or share ARI_OFFLOAD_RECORDING_DIR between the nodes)",
                headers={"Retry-After": str(int(self._node_timeout_s) + 1)},
            )  # fmt: skip
        return node

    def _holds(self, recording: Path) -> bool:
        here = self._recordings
        return (
            here is not None
            and recording.parent.resolve() == here.resolve()
            and (recording.exists())
        )

    def _outgoing(
        self, node: Node, request: web.Request, body: bytes
    ) -> tuple[URL, dict[str, str]]:
        headers = {name: request.headers[name] for name in _COPIED if name in request.headers}
        headers[NODE_HEADER] = self.sign(request.method, request.raw_path, body)
        return URL(node.api_url + request.raw_path, encoded=True), headers  # the signed bytes

    async def _relay(self, node: Node, request: web.Request) -> web.StreamResponse:
        """``node``'s answer to a download, written on to the client as it arrives."""
        url, headers = self._outgoing(node, request, b"")
        # No total time limit: a long recording takes as long as it takes; a stall does not.
        timeout = aiohttp.ClientTimeout(connect=self._timeout.total, sock_read=self._timeout.total)
        out: web.StreamResponse | None = None
        try:
            async with self._session.get(url, headers=headers, timeout=timeout,
                                         allow_redirects=False) as resp:  # fmt: skip
                if resp.status != 200:  # an error answer is small: relayed as it is
                    relayed = {h: resp.headers[h] for h in _RELAYED if h in resp.headers}
                    return web.Response(status=resp.status, body=await resp.read(),
                                        headers=relayed)  # fmt: skip
                out = web.StreamResponse(
                    headers={h: resp.headers[h] for h in _RELAYED_DOWNLOAD if h in resp.headers}
                )
                await out.prepare(request)
                async for chunk in resp.content.iter_chunked(RELAY_CHUNK):
                    await out.write(chunk)
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._count("unreachable")
            log.warning("cluster: node %s did not send the recording: %s", node.id,
                        type(exc).__name__)  # fmt: skip
            if out is None:
                raise _unreachable() from None
            # Begun: the connection closes, and the client finds the body shorter than the
            # length it was promised.
            out.force_close()
            return out
        self._count("answered")
        await out.write_eof()
        return out

    async def _send(self, node: Node, request: web.Request, fall_back: bool) -> web.Response | None:
        body = await request.read()
        url, headers = self._outgoing(node, request, body)
        try:
            async with self._session.request(
                request.method, url, data=body, headers=headers, timeout=self._timeout,
                allow_redirects=False,
            ) as resp:  # fmt: skip
                payload = await resp.read()
                relayed = {h: resp.headers[h] for h in _RELAYED if h in resp.headers}
                status = resp.status
        except aiohttp.ClientConnectorError as exc:
            self._count("unreachable")
            if fall_back:  # nothing reached it: placing the call here instead is safe
                log.warning("cluster: node %s unreachable (%s); running %s here", node.id,
                            type(exc).__name__, request.method)  # fmt: skip
                return None
            log.warning("cluster: node %s unreachable: %s", node.id, type(exc).__name__)
            raise _unreachable() from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._count("unreachable")
            log.warning("cluster: node %s did not answer: %s", node.id, type(exc).__name__)
            raise _unreachable() from None
        self._count("answered")
        log.debug("cluster: %s %s ran on node %s: %d", request.method, request.path, node.id,
                  status)  # fmt: skip
        return web.Response(status=status, body=payload, headers=relayed)

    def _count(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.forwarded(outcome)


async def from_node(forwarder: Forwarder | None, request: web.Request) -> str | None:
    """The node that forwarded ``request`` (checked), or None if a client sent it."""
    value = request.headers.get(NODE_HEADER)
    if value is None:
        return None
    if forwarder is None:  # not in a cluster: no node may forward anything here
        raise _bad_signature()
    return forwarder.verify(value, request.method, request.raw_path, await request.read())


def _bad_signature() -> ApiError:
    return ApiError(401, "invalid_node_signature", f"{NODE_HEADER}: not a valid node signature")


def _unreachable() -> ApiError:
    return ApiError(502, "node_unreachable", "the node running this did not answer; try again")
