"""The SDK's resources on one ``Client``: ``client.agents``, ``client.flows``,
``client.accesskeys`` (``client.calls`` is in ``sdk.calls``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from ari_offload.flows.actions import Action
from ari_offload.flows.model import action_to_json
from ari_offload.sdk.records import AccessKey, Agent, Flow

if TYPE_CHECKING:
    from ari_offload.sdk.client import Client


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()  # "leave unchanged" in update calls, distinct from None ("clear")


class Resource:
    """One kind of resource, requested through its client's session."""

    def __init__(self, client: Client) -> None:
        self._client = client


class Agents(Resource):
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
        return Agent.from_json(await self._client.request("GET", f"/agents/{seg(agent_id)}"))

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
        body = given(
            name=name, detail=detail, webhook=webhook, secret=secret, voice=voice,
            language=language, events_url=events_url, speaking_rate=speaking_rate,
            base_url=base_url, model=model, system_prompt=system_prompt, api_key=api_key,
            temperature=temperature, max_tokens=max_tokens,
        )  # fmt: skip
        path = f"/agents/{seg(agent_id)}"
        return Agent.from_json(await self._client.request("PATCH", path, body))

    async def delete(self, agent_id: str) -> None:
        await self._client.request("DELETE", f"/agents/{seg(agent_id)}")


class Flows(Resource):
    async def create(self, name: str, actions: Sequence[Action | Mapping[str, Any]]) -> Flow:
        body = {"name": name, "actions": actions_json(actions)}
        return Flow.from_json(await self._client.request("POST", "/flows", body))

    async def list(self) -> list[Flow]:
        data = await self._client.request("GET", "/flows")
        return [Flow.from_json(f) for f in data["flows"]]

    async def get(self, flow_id: str) -> Flow:
        return Flow.from_json(await self._client.request("GET", f"/flows/{seg(flow_id)}"))

    async def update(
        self,
        flow_id: str,
        *,
        name: str = UNSET,
        actions: Sequence[Action | Mapping[str, Any]] = UNSET,
    ) -> Flow:
        body = given(name=name, actions=UNSET if actions is UNSET else actions_json(actions))
        path = f"/flows/{seg(flow_id)}"
        return Flow.from_json(await self._client.request("PATCH", path, body))

    async def delete(self, flow_id: str) -> None:
        await self._client.request("DELETE", f"/flows/{seg(flow_id)}")


class AccessKeys(Resource):
    async def list(self) -> list[AccessKey]:
        data = await self._client.request("GET", "/accesskeys")
        return [AccessKey.from_json(k) for k in data["accesskeys"]]

    async def create(self, name: str = "", *, expires_in_s: int | None = None) -> AccessKey:
        """A new key; its ``token`` is only available on this return value."""
        body = {"name": name, "expires_in_s": expires_in_s}
        return AccessKey.from_json(await self._client.request("POST", "/accesskeys", body))

    async def revoke(self, key_id: str) -> AccessKey:
        path = f"/accesskeys/{seg(key_id)}"
        return AccessKey.from_json(await self._client.request("DELETE", path))


def seg(value: str) -> str:
    return quote(value, safe="")  # an id must stay one path segment


def given(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not UNSET}


def actions_json(actions: Sequence[Action | Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [dict(a) if isinstance(a, Mapping) else action_to_json(a) for a in actions]
