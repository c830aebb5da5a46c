"""The Python SDK for the ari-offload REST API (async, typed).

    async with await Client.signup("http://127.0.0.1:8080", "my-agent", "yourpassword") as c:
        agent = await c.agents.create("support-agent", webhook="http://127.0.0.1:9000/hook")
        flow = await c.flows.create("support-flow", [AiTalk(agent.id, "Hello!")])
        call = await c.calls.create("PJSIP/alice", flow.id)

Every non-2xx answer raises ``ApiError(status, code, message, field)``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote

import aiohttp

from ari_offload.flows.actions import Action
from ari_offload.flows.model import action_to_json, parse_actions
from ari_offload.sdk.events import Event, stream_events
from ari_offload.turn_fields import STORED_FIELDS

DEFAULT_TIMEOUT_S = 30.0
CallStatus = Literal["ringing", "active", "ended", "failed"]


class ApiError(Exception):
    """The API refused a request; ``field`` names the offending input, if any."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()  # "leave unchanged" in update calls, distinct from None ("clear")


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


@dataclass(frozen=True)
class AccessKey:
    id: str
    name: str
    created_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    token: str | None = field(default=None, repr=False)  # only when just created

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> AccessKey:
        return cls(
            d["id"],
            d["name"],
            _time(d["created_at"]),
            _time(d.get("expires_at")),
            _time(d.get("revoked_at")),
            _time(d.get("last_used_at")),
            d.get("token"),
        )


@dataclass(frozen=True)
class Agent:
    id: str
    name: str
    detail: str
    webhook: str | None  # None: an agent of kind "llm"
    has_secret: bool
    voice: str | None
    language: str | None
    created_at: datetime | None
    updated_at: datetime | None
    events_url: str | None = None  # last: older servers do not send it
    speaking_rate: float | None = None  # times the voice's pace; older servers do not send it
    # The LLM agent kind (older servers send none of these): its endpoint, model and knobs.
    kind: str = "webhook"
    base_url: str | None = None
    model: str | None = None
    system_prompt: str | None = None
    has_api_key: bool = False
    temperature: float | None = None
    max_tokens: int | None = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Agent:
        return cls(
            d["id"],
            d["name"],
            d["detail"],
            d["webhook"],
            d["has_secret"],
            d["voice"],
            d["language"],
            _time(d["created_at"]),
            _time(d["updated_at"]),
            d.get("events_url"),
            d.get("speaking_rate"),
            **{k: d[k] for k in _LLM_AGENT_FIELDS if k in d},
        )


_LLM_AGENT_FIELDS = (
    "kind", "base_url", "model", "system_prompt", "has_api_key", "temperature", "max_tokens"
)  # fmt: skip


@dataclass(frozen=True)
class Flow:
    id: str
    name: str
    actions: tuple[Action, ...]
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Flow:
        return cls(
            d["id"],
            d["name"],
            tuple(parse_actions(d["actions"])),
            _time(d["created_at"]),
            _time(d["updated_at"]),
        )


@dataclass(frozen=True)
class TranscriptLine:
    role: Literal["caller", "agent", "system"]
    text: str
    at: datetime | None


@dataclass(frozen=True)
class TurnLatency:
    """One turn's measurements; the fields are ``turn_fields.STORED_FIELDS``."""

    turn: int
    endpoint_ms: float | None
    stt_ms: float | None
    webhook_ms: float | None
    tts_first_audio_ms: float | None
    total_ms: float | None
    webhook_error: str | None
    at: datetime | None


@dataclass(frozen=True)
class Call:
    id: str
    flow_id: str | None
    direction: Literal["in", "out"]
    status: CallStatus
    caller: str | None
    destination: str | None
    started_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    hangup_reason: str | None
    # Filled by ``calls.get`` only.
    transcript: tuple[TranscriptLine, ...] = ()
    turns: tuple[TurnLatency, ...] = ()
    answered_by: Literal["human", "machine"] | None = None  # a flow's detect_machine verdict

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Call:
        return cls(
            d["id"],
            d["flow_id"],
            d["direction"],
            d["status"],
            d["caller"],
            d["destination"],
            _time(d["started_at"]),
            _time(d["answered_at"]),
            _time(d["ended_at"]),
            d["hangup_reason"],
            tuple(
                TranscriptLine(e["role"], e["text"], _time(e["at"]))
                for e in d.get("transcript", ())
            ),
            tuple(
                TurnLatency(
                    turn=t["turn"],
                    at=_time(t["at"]),
                    **{f.name: t[f.name] for f in STORED_FIELDS},
                )
                for t in d.get("turns", ())
            ),
            d.get("answered_by"),
        )


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


def _error(status: int, data: Any) -> ApiError:
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        return ApiError(status, str(err.get("code")), str(err.get("message")), err.get("field"))
    return ApiError(status, "http_error", f"unexpected answer (HTTP {status})")


class _Resource:
    def __init__(self, client: Client) -> None:
        self._client = client


class Agents(_Resource):
    async def create(
        self,
        name: str,
        *,
        webhook: str | None = None,
        detail: str = "",
        secret: str | None = None,
        voice: str | None = None,
        language: str | None = None,
        events_url: str | None = None,
        speaking_rate: float | None = None,
        kind: Literal["webhook", "llm"] = "webhook",
        base_url: str | None = None,
        model: str | None = None,
        system_prompt: str | None = None,
        api_key: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> Agent:
        """``events_url``: where call events are POSTed (the README's agent contract);
        ``speaking_rate``: times the voice's normal pace (``voices()`` gives the range).

        ``kind="llm"``: no webhook; each turn goes to an OpenAI-compatible endpoint, given as
        ``base_url``, ``model`` and optionally ``system_prompt``, ``api_key``,
        ``temperature``, ``max_tokens`` (docs/llm-agent.md)."""
        body: dict[str, Any] = {
            "name": name,
            "detail": detail,
            "secret": secret,
            "voice": voice,
            "language": language,
            "events_url": events_url,
        }
        # Each sent only when set: a server from before it refuses it.
        if webhook is not None:
            body["webhook"] = webhook
        if speaking_rate is not None:
            body["speaking_rate"] = speaking_rate
        if kind != "webhook":
            body["kind"] = kind
        llm = dict(
            base_url=base_url, model=model, system_prompt=system_prompt, api_key=api_key,
            temperature=temperature, max_tokens=max_tokens,
        )  # fmt: skip
        body.update((k, v) for k, v in llm.items() if v is not None)
        return Agent.from_json(await self._client.request("POST", "/agents", body))

    async def list(self) -> list[Agent]:
        data = await self._client.request("GET", "/agents")
        return [Agent.from_json(a) for a in data["agents"]]

    async def get(self, agent_id: str) -> Agent:
        return Agent.from_json(await self._client.request("GET", f"/agents/{_seg(agent_id)}"))

    async def voices(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The voice names an agent may pick (the default first) and the STT languages."""
        data = await self._client.request("GET", "/voices")
        return tuple(v["name"] for v in data["voices"]), tuple(data["languages"])

    async def update(
        self,
        agent_id: str,
        *,
        name: str = UNSET,
        detail: str = UNSET,
        webhook: str = UNSET,
        secret: str | None = UNSET,
        voice: str | None = UNSET,
        language: str | None = UNSET,
        events_url: str | None = UNSET,
        speaking_rate: float | None = UNSET,
        base_url: str = UNSET,
        model: str = UNSET,
        system_prompt: str = UNSET,
        api_key: str | None = UNSET,
        temperature: float | None = UNSET,
        max_tokens: int | None = UNSET,
    ) -> Agent:
        """Change only the fields given; None clears secret, voice, speaking_rate, language,
        events_url, and an llm agent's api_key, temperature or max_tokens."""
        body = _given(
            name=name, detail=detail, webhook=webhook, secret=secret, voice=voice,
            language=language, events_url=events_url, speaking_rate=speaking_rate,
            base_url=base_url, model=model, system_prompt=system_prompt, api_key=api_key,
            temperature=temperature, max_tokens=max_tokens,
        )  # fmt: skip
        path = f"/agents/{_seg(agent_id)}"
        return Agent.from_json(await self._client.request("PATCH", path, body))

    async def delete(self, agent_id: str) -> None:
        await self._client.request("DELETE", f"/agents/{_seg(agent_id)}")


class Flows(_Resource):
    async def create(self, name: str, actions: Sequence[Action | Mapping[str, Any]]) -> Flow:
        body = {"name": name, "actions": _actions(actions)}
        return Flow.from_json(await self._client.request("POST", "/flows", body))

    async def list(self) -> list[Flow]:
        data = await self._client.request("GET", "/flows")
        return [Flow.from_json(f) for f in data["flows"]]

    async def get(self, flow_id: str) -> Flow:
        return Flow.from_json(await self._client.request("GET", f"/flows/{_seg(flow_id)}"))

    async def update(
        self,
        flow_id: str,
        *,
        name: str = UNSET,
        actions: Sequence[Action | Mapping[str, Any]] = UNSET,
    ) -> Flow:
        body = _given(name=name, actions=UNSET if actions is UNSET else _actions(actions))
        path = f"/flows/{_seg(flow_id)}"
        return Flow.from_json(await self._client.request("PATCH", path, body))

    async def delete(self, flow_id: str) -> None:
        await self._client.request("DELETE", f"/flows/{_seg(flow_id)}")


class Calls(_Resource):
    async def list(
        self,
        status: CallStatus | Sequence[CallStatus] | None = None,
        *,
        limit: int | None = None,
    ) -> list[Call]:
        """Newest first; ``status`` filters (``"active"`` or ``["ringing", "active"]``)."""
        params: dict[str, str] = {}
        if status:
            params["status"] = status if isinstance(status, str) else ",".join(status)
        if limit is not None:
            params["limit"] = str(limit)
        data = await self._client.request("GET", "/calls", params=params)
        return [Call.from_json(c) for c in data["calls"]]

    async def get(self, call_id: str) -> Call:
        """The call with its transcript and turn latencies."""
        return Call.from_json(await self._client.request("GET", f"/calls/{_seg(call_id)}"))

    async def create(
        self,
        destination: str,
        flow_id: str,
        *,
        caller_id: str | None = None,
        route: str | None = None,
    ) -> Call:
        """Place an outbound call; the flow runs when it is answered.

        ``destination`` is a number (dialled on ``route``, or the operator's default route)
        or the name of an endpoint the operator allows; the operator's policy decides.
        """
        body: dict[str, Any] = {"destination": destination, "flow_id": flow_id}
        if caller_id is not None:
            body["caller_id"] = caller_id
        if route is not None:
            body["route"] = route
        return Call.from_json(await self._client.request("POST", "/calls", body))

    async def delete(self, call_id: str) -> None:
        """Delete an ended call with its transcript and turns (409 while it is live)."""
        await self._client.request("DELETE", f"/calls/{_seg(call_id)}")

    async def hangup(self, call_id: str) -> Call:
        path = f"/calls/{_seg(call_id)}/hangup"
        return Call.from_json(await self._client.request("POST", path))

    async def talk(self, call_id: str, text: str) -> Call:
        return Call.from_json(
            await self._client.request("POST", f"/calls/{_seg(call_id)}/talk", {"text": text})
        )


class AccessKeys(_Resource):
    async def list(self) -> list[AccessKey]:
        data = await self._client.request("GET", "/accesskeys")
        return [AccessKey.from_json(k) for k in data["accesskeys"]]

    async def create(self, name: str = "", *, expires_in_s: int | None = None) -> AccessKey:
        """A new key; its ``token`` is only available on this return value."""
        body = {"name": name, "expires_in_s": expires_in_s}
        return AccessKey.from_json(await self._client.request("POST", "/accesskeys", body))

    async def revoke(self, key_id: str) -> AccessKey:
        path = f"/accesskeys/{_seg(key_id)}"
        return AccessKey.from_json(await self._client.request("DELETE", path))


def _seg(value: str) -> str:
    return quote(value, safe="")  # an id must stay one path segment


def _given(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not UNSET}


def _actions(actions: Sequence[Action | Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [dict(a) if isinstance(a, Mapping) else action_to_json(a) for a in actions]
