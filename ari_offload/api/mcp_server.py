"""MCP server over stdio (``ari-offload mcp``): coding assistants drive the REST API.

It is a thin client of the REST API through ``ari_offload.client``, configured by
``ARI_OFFLOAD_URL`` (default http://127.0.0.1:8080) and ``ARI_OFFLOAD_ACCESSKEY``.
Failures come back as tool errors carrying the API's message, which names the field to fix.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from ari_offload.client import ApiError, Client
from ari_offload.flows.model import Action, Hangup, Talk, action_to_json

DEFAULT_URL = "http://127.0.0.1:8080"
ENV_URL = "ARI_OFFLOAD_URL"
ENV_KEY = "ARI_OFFLOAD_ACCESSKEY"

INSTRUCTIONS = """\
ari-offload puts AI agents on the phone through Asterisk. An agent is a webhook that receives
the caller's words as text and answers with text. A flow is a list of actions (ai_talk, talk,
pause, hangup, transfer) that runs on a call; route inbound calls to it from the dialplan with
Stasis(ari-offload,flow=NAME), or place an outbound call with make_call."""


@asynccontextmanager
async def _client() -> AsyncIterator[Client]:
    key = os.environ.get(ENV_KEY, "")
    if not key:
        raise ToolError(f"set {ENV_KEY} to an access key (POST /v1.0/auth/login returns one)")
    try:
        async with Client(os.environ.get(ENV_URL, DEFAULT_URL), key) as client:
            yield client
    except ApiError as exc:
        where = f" (field {exc.field})" if exc.field else ""
        raise ToolError(f"{exc.message}{where} [HTTP {exc.status} {exc.code}]") from None


def _plain(value: Any) -> Any:
    """SDK records -> JSON-friendly dicts for structured tool output."""
    if isinstance(value, Action):
        return action_to_json(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.name != "token"
        }
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


async def create_agent(
    name: str,
    webhook: str,
    detail: str = "",
    voice: str | None = None,
    language: str | None = None,
) -> dict[str, Any]:
    """Create an agent: the webhook receives {"call_id", "text", ...} and replies {"text"}."""
    async with _client() as c:
        agent = await c.agents.create(
            name, webhook=webhook, detail=detail, voice=voice, language=language
        )
    return dict(_plain(agent))


async def list_agents() -> dict[str, Any]:
    """List the agents of this access key's customer."""
    async with _client() as c:
        return {"agents": _plain(await c.agents.list())}


async def list_flows() -> dict[str, Any]:
    """List flows (to find the id or name to give make_call)."""
    async with _client() as c:
        return {"flows": _plain(await c.flows.list())}


async def create_flow(name: str, actions: list[dict[str, Any]]) -> dict[str, Any]:
    """Create a flow. actions, in order, e.g. [{"type": "ai_talk", "agent_id": "...",
    "welcome_message": "Hello!"}]; other types: talk {text}, pause {seconds},
    hangup, transfer {context, extension[, priority]} or {endpoint}."""
    async with _client() as c:
        return dict(_plain(await c.flows.create(name, actions)))


async def make_call(
    destination: str,
    flow: str | None = None,
    message: str | None = None,
    caller_id: str | None = None,
) -> dict[str, Any]:
    """Place an outbound call to destination (PJSIP/alice, or a number for the trunk).

    Give either flow (id or name) to run when answered, or message to say and then hang up.
    """
    if (flow is None) == (message is None):
        raise ToolError("give exactly one of flow or message")
    async with _client() as c:
        if message is not None:
            made = await c.flows.create(f"say-{secrets.token_hex(4)}", [Talk(message), Hangup()])
            flow_id = made.id
        else:
            flow_id = await _flow_id(c, flow or "")
        call = await c.calls.create(destination, flow_id, caller_id=caller_id)
    return dict(_plain(call))


async def _flow_id(client: Client, flow: str) -> str:
    for known in await client.flows.list():
        if flow in (known.id, known.name):
            return known.id
    raise ToolError(f"no flow with id or name {flow!r}; list_flows shows them")


async def list_active_calls() -> dict[str, Any]:
    """Calls ringing or in progress now."""
    async with _client() as c:
        return {"calls": _plain(await c.calls.list(["ringing", "active"]))}


async def get_transcript(call_id: str) -> dict[str, Any]:
    """A call's status, transcript (caller/agent/system lines) and per-turn latencies."""
    async with _client() as c:
        call = await c.calls.get(call_id)
    return {
        "call_id": call.id,
        "status": call.status,
        "transcript": _plain(call.transcript),
        "turns": _plain(call.turns),
    }


async def hangup_call(call_id: str) -> dict[str, Any]:
    """Hang up a call in progress."""
    async with _client() as c:
        return dict(_plain(await c.calls.hangup(call_id)))


TOOLS = (
    create_agent,
    list_agents,
    list_flows,
    create_flow,
    make_call,
    list_active_calls,
    get_transcript,
    hangup_call,
)


def build_server() -> MCPServer[Any]:
    server: MCPServer[Any] = MCPServer(
        "ari-offload", instructions=INSTRUCTIONS, log_level="WARNING"
    )
    for tool in TOOLS:
        server.add_tool(tool)
    return server


def run_mcp() -> None:
    """Serve MCP on stdin/stdout until the client closes it (logs go to stderr)."""
    build_server().run("stdio")
