"""The Python SDK for the ari-offload REST API (async, typed).

    async with await Client.signup("http://127.0.0.1:8080", "my-agent", "yourpassword") as c:
        agent = await c.agents.create("support-agent", webhook="http://127.0.0.1:9000/hook")
        flow = await c.flows.create("support-flow", [AiTalk(agent.id, "Hello!")])
        call = await c.calls.create("PJSIP/alice", flow.id)

Every non-2xx answer raises ``ApiError(status, code, message, field)``. The records are in
``sdk.records``, the resources in ``sdk.resources`` and ``sdk.calls``; every name is
importable from here.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from types import TracebackType
from typing import Any

import aiohttp

from ari_offload.sdk.calls import Calls
from ari_offload.sdk.events import Event, stream_events
from ari_offload.sdk.records import (
    AccessKey,
    Agent,
    Call,
    CallStatus,
    Flow,
    TranscriptLine,
    TurnLatency,
)
from ari_offload.sdk.resources import UNSET, AccessKeys, Agents, Flows

DEFAULT_TIMEOUT_S = 30.0


class ApiError(Exception):
    """The API refused a request; ``field`` names the offending input, if any."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field


class Client:
    """One HTTP session to one server, authenticated by one access key (sent as a header)."""

    def __init__(self, base_url: str, accesskey: str, *, timeout_s: float = DEFAULT_TIMEOUT_S):
        self.base_url = base_url.rstrip("/").removesuffix("/v1.0")
        self.accesskey = accesskey
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self.agents = Agents(self)
        self.flows = Flows(self)
        self.calls = Calls(self)
        self.accesskeys = AccessKeys(self)

    @classmethod
    async def signup(cls, base_url: str, name: str, password: str) -> Client:
        """Create a customer; the returned client uses its first key (``client.accesskey``)."""
        return await cls._session_key(base_url, "signup", name, password)

    @classmethod
    async def login(cls, base_url: str, name: str, password: str) -> Client:
        """A client with a fresh access key for an existing customer."""
        return await cls._session_key(base_url, "login", name, password)

    @classmethod
    async def _session_key(cls, base_url: str, what: str, name: str, password: str) -> Client:
        anonymous = cls(base_url, "")
        try:
            data = await anonymous.request(
                "POST", f"/auth/{what}", {"name": name, "password": password}
            )
        finally:
            await anonymous.close()
        return cls(base_url, data["accesskey"]["token"])

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def events(self, last_event_id: str | None = None, *, reconnect: bool = True
               ) -> AsyncGenerator[Event, None]:  # fmt: skip
        """Your calls' events as they happen, resumed after drops (``sdk/events.py``)."""
        return stream_events(self.base_url, self.accesskey, _error, last_event_id,
                             reconnect=reconnect)  # fmt: skip

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        """Call ``/v1.0{path}``; returns the decoded JSON (None for 204)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        headers = {"Authorization": f"Bearer {self.accesskey}"} if self.accesskey else {}
        url = f"{self.base_url}/v1.0{path}"
        try:
            async with self._session.request(
                method, url, json=body, params=params, headers=headers
            ) as resp:
                if resp.status == 204:
                    return None
                try:
                    data = await resp.json(content_type=None)
                except ValueError:
                    data = None
                if resp.status >= 400:
                    raise _error(resp.status, data)
                return data
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise ApiError(0, "unreachable", f"cannot reach {self.base_url}: {exc!r}") from exc

    async def download(self, path: str) -> bytes:
        """GET ``/v1.0{path}``, a file (a recording): its bytes as they are."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        headers = {"Authorization": f"Bearer {self.accesskey}"}
        try:
            async with self._session.get(f"{self.base_url}/v1.0{path}", headers=headers) as resp:
                if resp.status >= 400:
                    try:
                        data = await resp.json(content_type=None)
                    except ValueError:
                        data = None
                    raise _error(resp.status, data)
                return await resp.read()
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise ApiError(0, "unreachable", f"cannot reach {self.base_url}: {exc!r}") from exc


def _error(status: int, data: Any) -> ApiError:
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        return ApiError(status, str(err.get("code")), str(err.get("message")), err.get("field"))
    return ApiError(status, "http_error", f"unexpected answer (HTTP {status})")


# The SDK's names, importable from here as they always were.
__all__ = [
    "UNSET",
    "AccessKey",
    "AccessKeys",
    "Agent",
    "Agents",
    "ApiError",
    "Call",
    "CallStatus",
    "Calls",
    "Client",
    "Flow",
    "Flows",
    "TranscriptLine",
    "TurnLatency",
]
